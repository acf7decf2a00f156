// What both workflows share: the control-queue activities with their timeouts and retry policy.
import { patched, proxyActivities } from '@temporalio/workflow';
import type * as control from '../activities/control';
import { CONTROL_QUEUE } from '../contract';

/** The patch that gives control activities a heartbeat timeout (runs recorded before it had none). */
export const CONTROL_HEARTBEATS = 'control-activity-heartbeats';

/** Without the run's setting (the evolution's own steps): generous, since preparing a large corpus may keep its worker busy. */
const DEFAULT_CONTROL_HEARTBEAT_S = 120;

/**
 * Every control activity heartbeats (activities/control.ts); after `heartbeatTimeoutS` of silence its
 * worker is taken for dead and the step is retried on another control worker.
 */
export const controlActivities = (summary?: string, heartbeatTimeoutS: number = DEFAULT_CONTROL_HEARTBEAT_S) =>
  proxyActivities<typeof control>({
    taskQueue: CONTROL_QUEUE,
    startToCloseTimeout: '30 minutes',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
    ...(patched(CONTROL_HEARTBEATS) ? { heartbeatTimeout: `${heartbeatTimeoutS} seconds` } : {}),
    summary,
  });
