// Evolution runs through the Temporal client: settings from a config, start, follow, query,
// signal and list. The CLI, `npm start` and the tests share these; output is the caller's.
import { randomUUID } from 'node:crypto';
import Long from 'long';
import { ApplicationFailure, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { connectClient } from './temporal/connection';
import { EvoFramework, EvoStatus, EvoIteration } from '../contract/search-attributes';
import { defaultPayloadConverter } from '@temporalio/common';
import { CANDIDATE_FAILED, CONTROL_QUEUE, ITERATION_FAILED, iterationWorkflowId, type RunSettings, type RunState, type RunSummary, type TrainingHeartbeat } from '../contract';
import { composeSummary, readSummary } from '../archive';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { chooseProvider } from '../propose';
import { assertFramework, hashText } from '../core/program';
import { EvoError } from '../core/errors';
import { etaSeconds, progress } from '../core/output';

export interface RunOptions {
  /** A YAML config; default configs/<framework>.yaml with the smoke profile. */
  config?: string;
  profile?: string;
  iterations?: number;
  seed?: number;
}

/** A run's settings from its config: `config` as written, or the framework's shipped config on `profile` (default smoke). */
export function settingsFor(opts: RunOptions, framework: string): RunSettings {
  const cfg = opts.config
    ? loadRunConfig(opts.config, { profile: opts.profile, iterations: opts.iterations })
    : loadRunConfig(defaultConfigPath(assertFramework(framework)), { profile: opts.profile ?? 'smoke', iterations: opts.iterations });
  if (opts.config && cfg.framework !== framework && framework !== 'all') throw new EvoError(`config ${opts.config} is for ${cfg.framework}, not ${framework}`, 'USAGE');
  for (const n of cfg.notices) progress(`note: ${n}`);
  progress(chooseProvider(cfg).notice);
  const settings = runSettingsOf(cfg);
  const seed = opts.seed;
  return seed === undefined ? settings : { ...settings, seed, evaluator: { ...settings.evaluator, seeds: settings.evaluator.seeds.map((_, i) => seed + i) } };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** One client connection for `use`, closed afterwards; a workflow that does not exist becomes `notFound`. */
async function withClient<T>(use: (client: Client) => Promise<T>, notFound?: string): Promise<T> {
  const { client, connection } = await connectClient();
  try {
    return await use(client);
  } catch (err) {
    if (notFound && err instanceof WorkflowNotFoundError) throw new EvoError(notFound, 'NOT_FOUND');
    throw err;
  } finally {
    await connection.close();
  }
}

/** The resolved settings in a few words and their content hash, for the run's memo (shown on its Web UI page). */
export function configDigest(settings: RunSettings): { hash: string; text: string } {
  const ev = settings.evaluator;
  const text = [
    `${settings.framework}, ${ev.profile} profile, ${settings.iterations} iterations, seed ${settings.seed}`,
    `sizes ${ev.sizes.map((s) => s.name).join(' ')}; seeds ${ev.seeds.join(',')}; ${ev.training.steps} steps, batch ${ev.training.batchSize}, lr ${ev.training.learningRate}`,
    `fitness ${settings.fitness.mode} (${settings.fitness.level} intervals, margin ${settings.fitness.margin}); mutation ${settings.llm ? `llm ${settings.llm.primaryModel}` : settings.mutation.provider}; screen ${settings.screen.enabled ? 'on' : 'off'}`,
  ].join('\n');
  return { hash: hashText(JSON.stringify(settings)), text };
}

export function startRun(settings: RunSettings, workflowId?: string): Promise<string> {
  return withClient(async (client) => {
    const id = workflowId ?? `evo-${settings.framework}-${settings.evaluator.profile}-${timestamp()}`;
    await client.workflow.start('evolution', {
      taskQueue: CONTROL_QUEUE,
      workflowId: id,
      args: [{ settings }],
      typedSearchAttributes: [
        { key: EvoFramework, value: settings.framework },
        { key: EvoStatus, value: 'running' },
        { key: EvoIteration, value: 0 },
      ],
      staticSummary: `evolve ${settings.framework} attention, ${settings.evaluator.profile} profile, ${settings.iterations} iterations`,
      memo: { config: configDigest(settings) },
    });
    return id;
  });
}

/** `pause`, `resume` or `stop` one run (the evolution workflow's signals). */
export function signalRun(workflowId: string, signal: 'pause' | 'resume' | 'stop'): Promise<void> {
  return withClient((client) => client.workflow.getHandle(workflowId).signal(signal), `no running workflow ${workflowId}`);
}

/**
 * Follow a run: report each iteration as it lands, return the final summary. With `onTrainings`, each
 * poll while the run goes on also reports its trainings in flight (for progress bars). The workflow
 * answers with its compact state; the records come from the run archive.
 */
export function waitForRun(workflowId: string, onIteration: (s: RunSummary, index: number) => void, onTrainings?: (trainings: TrainingInFlight[]) => void): Promise<RunSummary> {
  return withClient(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    let shown = 0;
    const show = (s: RunSummary) => {
      for (; shown < s.iterations.length; shown++) onIteration(s, shown);
    };
    for (;;) {
      const desc = await handle.describe();
      if (desc.status.name !== 'RUNNING') {
        const result = composeSummary((await handle.result()) as RunState);
        show(result);
        return result;
      }
      let state: RunState | undefined;
      try {
        state = await handle.query<RunState>('status');
      } catch {
        // A query can fail while the workflow continues as new or no worker is up yet: try again.
      }
      if (state && state.iterations.length > shown) show(composeSummary(state));
      if (onTrainings) onTrainings(await trainingsInFlight(client, desc));
      await new Promise((r) => setTimeout(r, 2000));
    }
  });
}

export interface RunListing {
  workflowId: string;
  framework: string;
  /** Temporal's execution status (RUNNING, COMPLETED, …). */
  temporalStatus: string;
  iteration: string;
  /** The run's own status search attribute, unless Temporal says the run ended otherwise (then Temporal's, in lower case). */
  runStatus: string;
}

const OPEN = new Set(['RUNNING']);

/** The run's own status where Temporal agrees it is still open; Temporal's verdict where it ended. */
function trueStatus(temporalStatus: string, runStatus: string | undefined): string {
  if (OPEN.has(temporalStatus) || temporalStatus === 'COMPLETED' || temporalStatus === 'CONTINUED_AS_NEW') return runStatus || temporalStatus.toLowerCase();
  return temporalStatus.toLowerCase();
}

/** The innermost message of a failure chain, and whether a person must act first (a non-retryable error that is not a candidate's). */
function rootCause(err: unknown): { message: string; userFault: boolean } {
  let message = String(err);
  let userFault = false;
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    message = e.message || message;
    if (e instanceof ApplicationFailure && e.nonRetryable && e.type !== ITERATION_FAILED && e.type !== CANDIDATE_FAILED) userFault = true;
  }
  return { message: message.split('\n')[0], userFault };
}

/** Why a run that did not complete ended, and what the user can do about it. */
async function failureOf(handle: ReturnType<Client['workflow']['getHandle']>, workflowId: string, temporalStatus: string, summary: RunSummary): Promise<{ failure: string; next: string }> {
  const cause = await handle.result().then(
    () => ({ message: temporalStatus.toLowerCase(), userFault: false }),
    (err: unknown) => rootCause(err),
  );
  const done = summary.iterations.length;
  const kept = done === 1 ? 'iteration 0 is kept' : `iterations 0–${done - 1} are kept`;
  const from = done === 0 ? 'from its start (no iteration was finished)' : `from iteration ${done} (${kept}, not trained again)`;
  return { failure: cause.message, next: `${cause.userFault ? 'fix the cause above, then ' : ''}\`evo retry ${workflowId}\` continues it ${from}` };
}

/** Where `evo retry` resets a run to, and what that continues. */
export interface RetryPoint {
  /** The WORKFLOW_TASK_COMPLETED event whose commands started the step that did not finish. */
  eventId: number;
  /** What runs again, in words: the iteration or the step. */
  step: string;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>['events']>[number];

/**
 * The last point of a failed run's history before the step that did not finish (an iteration child or
 * an activity without a completion): resetting there keeps everything finished before it and runs that
 * step again. An evolution runs one step at a time, so there is at most one such step.
 */
export function retryPoint(events: HistoryEvent[]): RetryPoint {
  const completed = new Set<string>();
  for (const e of events) {
    if (e.activityTaskCompletedEventAttributes) completed.add(String(e.activityTaskCompletedEventAttributes.scheduledEventId));
    if (e.childWorkflowExecutionCompletedEventAttributes) completed.add(String(e.childWorkflowExecutionCompletedEventAttributes.initiatedEventId));
  }
  const unfinished = events.find((e) => (e.activityTaskScheduledEventAttributes || e.startChildWorkflowExecutionInitiatedEventAttributes) && !completed.has(String(e.eventId)));
  const limit = unfinished ? Number(unfinished.eventId) : Infinity;
  const taskDone = events.filter((e) => e.workflowTaskCompletedEventAttributes && Number(e.eventId) < limit).pop();
  if (!taskDone) throw new EvoError('the run failed before its first step was started: start it again with `evo start`', 'NOT_RETRYABLE');
  const child = unfinished?.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
  const activity = unfinished?.activityTaskScheduledEventAttributes?.activityType?.name;
  const step = child ? `iteration ${Number(/iter-(\d+)$/.exec(child)?.[1] ?? NaN)}` : activity ? `its ${activity} step` : 'its last step';
  return { eventId: Number(taskDone.eventId), step };
}

/**
 * `evo retry`: continues a run that did not complete with Temporal's reset to just before the step that
 * did not finish. Finished iterations stay in the history and are not run again; the unfinished one starts
 * over, its finished trainings coming from the cache. The run keeps its workflow ID.
 */
export function retryRun(workflowId: string): Promise<RetryPoint & { runId: string }> {
  return withClient(async (client) => {
    const desc = await client.workflow.getHandle(workflowId).describe();
    const status = desc.status.name;
    if (status === 'RUNNING') throw new EvoError(`run ${workflowId} is still running: nothing to retry (see \`evo status ${workflowId}\`)`, 'USAGE');
    if (status === 'COMPLETED') throw new EvoError(`run ${workflowId} completed: nothing to retry`, 'USAGE');
    const history = await client.workflow.getHandle(workflowId, desc.runId).fetchHistory();
    const point = retryPoint(history.events ?? []);
    const { runId } = await client.workflowService.resetWorkflowExecution({
      namespace: client.options.namespace,
      workflowExecution: { workflowId, runId: desc.runId },
      reason: `evo retry: continue from ${point.step}`,
      workflowTaskFinishEventId: Long.fromNumber(point.eventId),
      requestId: randomUUID(),
    });
    return { ...point, runId: runId ?? '' };
  }, `no workflow ${workflowId}`);
}

/** The most recent evolution runs, from their search attributes: one row per run, its current execution (not those it continued as new from). */
export function listRuns(limit = 50): Promise<RunListing[]> {
  return withClient(async (client) => {
    const runs: RunListing[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'evolution' AND ExecutionStatus != 'ContinuedAsNew'` })) {
      const sa = wf.typedSearchAttributes;
      const runStatus = trueStatus(wf.status.name, sa.get(EvoStatus) as string | undefined);
      runs.push({ workflowId: wf.workflowId, framework: String(sa.get(EvoFramework) ?? ''), temporalStatus: wf.status.name, iteration: String(sa.get(EvoIteration) ?? ''), runStatus });
      if (runs.length >= limit) break;
    }
    return runs;
  });
}

/** A training running now, from its activity's last heartbeat. */
export interface TrainingInFlight extends TrainingHeartbeat {
  /** The iteration workflow it belongs to. */
  workflowId: string;
  attempt: number;
  /** The attempt before ran out of GPU memory: its failure's message (workers/device.ts). */
  lastOutOfMemory?: string;
  /** Seconds left at the pace of this attempt so far; null before the first step is reported. */
  etaS: number | null;
}

/** Where a run stands: its summary (live from the workflow while it runs, else the archive's), Temporal's view and what trains now. */
export interface RunSnapshot {
  summary: RunSummary;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, … */
  temporalStatus: string;
  startTime: Date;
  closeTime: Date | null;
  /** When each finished iteration's workflow closed, by iteration number. */
  iterationClosedAt: Record<number, Date>;
  trainings: TrainingInFlight[];
  /** The settings the run was started with (its first input), when the history still has them. */
  settings: RunSettings | null;
  /** The run's own status, unless Temporal says it ended otherwise: then Temporal's, in lower case. */
  status: string;
  /** For a run that did not complete: the root cause in one line, and what the user can do about it. */
  failure?: string;
  next?: string;
}

type PendingActivity = NonNullable<WorkflowExecutionDescription['raw']['pendingActivities']>[number];

function inFlightOf(workflowId: string, pending: PendingActivity): TrainingInFlight | null {
  const payload = pending.heartbeatDetails?.payloads?.[0];
  if (!payload) return null;
  const beat = defaultPayloadConverter.fromPayload<TrainingHeartbeat>(payload);
  if (typeof beat?.step !== 'number' || typeof beat.size !== 'string') return null;
  const seconds = (t: typeof pending.lastStartedTime) => (t ? Number(t.seconds ?? 0) + (t.nanos ?? 0) / 1e9 : null);
  const started = seconds(pending.lastStartedTime);
  const beatAt = seconds(pending.lastHeartbeatTime);
  const etaS = started !== null && beatAt !== null ? etaSeconds(beat.step, beat.steps, beat.resumedFromStep, beatAt - started) : null;
  const oom = pending.lastFailure?.applicationFailureInfo?.type === 'GPU_OUT_OF_MEMORY' ? { lastOutOfMemory: pending.lastFailure.message ?? '' } : {};
  return { ...beat, workflowId, attempt: pending.attempt ?? 1, ...oom, etaS };
}

/** The trainings of a run's pending iteration workflows, from their activities' last heartbeats. */
async function trainingsInFlight(client: Client, run: WorkflowExecutionDescription): Promise<TrainingInFlight[]> {
  const trainings: TrainingInFlight[] = [];
  for (const child of run.raw.pendingChildren ?? []) {
    if (!child.workflowId) continue;
    const childDesc = await client.workflow.getHandle(child.workflowId).describe().catch(() => undefined);
    for (const pending of childDesc?.raw.pendingActivities ?? []) {
      const t = inFlightOf(child.workflowId, pending);
      if (t) trainings.push(t);
    }
  }
  return trainings;
}

/** The settings in the run's first history event (one event fetched, however long the history). */
async function startSettings(client: Client, workflowId: string): Promise<RunSettings | null> {
  const page = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId }, maximumPageSize: 1 });
  const payload = page.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? (defaultPayloadConverter.fromPayload<{ settings?: RunSettings }>(payload).settings ?? null) : null;
}

/**
 * A run's state for `evo status` and `evo report`. A closed run is read from its archive (no worker
 * needs to be up); a running one is queried, falling back to the archive while no worker answers.
 */
export function runSnapshot(workflowId: string): Promise<RunSnapshot> {
  return withClient(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    const running = desc.status.name === 'RUNNING';
    let summary: RunSummary | null = running ? null : readSummary(workflowId);
    if (!summary && !running) throw new EvoError(`run ${workflowId} closed (${desc.status.name}) before it recorded an iteration: nothing to show`, 'NOT_FOUND');
    if (!summary) {
      try {
        summary = composeSummary(await handle.query<RunState>('status'));
      } catch (err) {
        if (err instanceof EvoError) throw err;
        summary = readSummary(workflowId);
        if (!summary) throw new EvoError(`run ${workflowId} has no summary yet: no worker answered its status query (${(err as Error).message.split('\n')[0]}) and the archive holds none`, 'NOT_FOUND');
      }
    }
    const iterationClosedAt: Record<number, Date> = {};
    for (const it of summary.iterations) {
      const closed = await client.workflow.getHandle(iterationWorkflowId(workflowId, it.iteration)).describe().then((d) => d.closeTime, () => undefined);
      if (closed) iterationClosedAt[it.iteration] = closed;
    }
    const trainings = await trainingsInFlight(client, desc);
    // What Temporal says wins: a run that failed is shown as failed, whatever its archive last said.
    const temporalStatus = desc.status.name;
    const ended = running || temporalStatus === 'COMPLETED' || temporalStatus === 'CONTINUED_AS_NEW' ? {} : await failureOf(handle, workflowId, temporalStatus, summary);
    return {
      summary,
      temporalStatus,
      startTime: desc.startTime,
      closeTime: desc.closeTime ?? null,
      iterationClosedAt,
      trainings,
      settings: await startSettings(client, workflowId),
      status: trueStatus(temporalStatus, summary.status),
      ...ended,
    };
  }, `no workflow ${workflowId}`);
}
