// What both workflows share: the control-queue activities with their timeouts and retry policy.
import { proxyActivities } from '@temporalio/workflow';
import type * as control from '../activities/control';
import { CONTROL_QUEUE } from '../contract';

export const controlActivities = (summary?: string) =>
  proxyActivities<typeof control>({
    taskQueue: CONTROL_QUEUE,
    startToCloseTimeout: '30 minutes',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
    summary,
  });
