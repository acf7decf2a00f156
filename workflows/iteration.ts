// One iteration of an evolution run (child workflow `<runId>/iter-NNN`): propose with bounded re-tries →
// validate → train every size in parallel on the training queue → fit → select.
// Deterministic code only: randomness, time and I/O live in activities.
import { ApplicationFailure, CancellationScope, proxyActivities, ActivityFailure, isCancellation, patched, setCurrentDetails } from '@temporalio/workflow';
import type * as training from '../activities/train';
import type { ValidationOutcome } from '../activities/validate';
import { screenEvaluator } from '../evaluator/profiles';
import { earlyStopAfter } from '../score/early-stop';
import {
  CANDIDATE_FAILED,
  TRAIN_QUEUE,
  type AttemptRecord,
  type EvaluatorSettings,
  type IterationInput,
  type IterationRecord,
  type SeedRun,
  type SizeSpec,
} from '../contract';
import { addTotals, emptyTotals, type UsageTotals } from '../propose/llm/ledger';
import { controlActivities } from './activities';
import { failedWithUsage, usageOfFailure, USAGE_OF_FAILED_ITERATIONS } from './failures';
import { iterationOutcome } from './details';
import { counted } from '../core/output';

/** The patch that cancels a failed candidate's other trainings (runs recorded before it did not). */
export const CANCEL_SIBLING_TRAININGS = 'cancel-sibling-trainings';
/** The patch that trains a candidate's first seeds, then the rest only if it is not clearly worse. */
export const EARLY_STOP = 'early-stop-after-first-seeds';

function candidateFailed(err: unknown): err is ActivityFailure & { cause: ApplicationFailure } {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === CANDIDATE_FAILED;
}

function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

/** Rough non-embedding size of the baseline at this shape, for the UI's summary line only. */
function approxParams(d: number, layers: number): number {
  return layers * 12 * d * d;
}

export async function iteration(input: IterationInput): Promise<IterationRecord> {
  const paid = { usage: emptyTotals() };
  try {
    const record = await runIteration(input, paid);
    // The outcome as the Web UI's current details (a query answer, no command: replay-safe).
    setCurrentDetails(iterationOutcome(record));
    return record;
  } catch (err) {
    // An iteration that fails (an LLM refusing us after paid attempts, a step out of retries) still
    // reports what it paid for: the evolution adds it to the run's totals.
    if (isCancellation(err) || !patched(USAGE_OF_FAILED_ITERATIONS)) throw err;
    throw failedWithUsage(err, addTotals(paid.usage, usageOfFailure(err)));
  }
}

/** The iteration itself; `paid.usage` holds the LLM usage of every proposal so far. */
async function runIteration(input: IterationInput, paid: { usage: UsageTotals }): Promise<IterationRecord> {
  const { settings, runId } = input;
  const ev = settings.evaluator;
  const label = `iteration ${input.iteration}`;
  const failedAttempts: AttemptRecord[] = [];
  const history = [...input.history];
  let candidate: ValidationOutcome & { programHash: string | null; description: string } = { ok: false, programHash: null, description: '' };
  const attempts = input.iteration === 0 ? 1 : settings.mutation.maxAttempts;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    setCurrentDetails(`${label}: proposing (attempt ${attempt} of ${attempts})`);
    const proposal = await controlActivities(`${label}: propose (attempt ${attempt})`, settings.heartbeatTimeoutS).proposeCandidate({
      runId,
      settings,
      iteration: input.iteration,
      parentHash: input.parentHash,
      history,
      proposalIndex: input.proposalIndex + attempt - 1,
      failedAttempts,
    });
    paid.usage = addTotals(paid.usage, proposal.usage);
    if (proposal.programHash === null) {
      const reason = proposal.refused ?? 'the reply held no program';
      candidate = { ok: false, reason, programHash: null, description: proposal.description };
      failedAttempts.push({ programHash: null, description: proposal.description, error: reason, kind: 'reply-refused' });
      continue;
    }
    setCurrentDetails(`${label}: validating ${proposal.programHash} (${proposal.description})`);
    const report = await controlActivities(`${label}: validate ${proposal.programHash}`, settings.heartbeatTimeoutS).validateCandidate({
      runId,
      framework: settings.framework,
      programHash: proposal.programHash,
      settings,
    });
    candidate = { ...report, programHash: proposal.programHash, description: proposal.description };
    if (report.ok) break;
    failedAttempts.push({ programHash: proposal.programHash, description: proposal.description, error: report.reason ?? 'refused', kind: 'validation-failed' });
    history.push({ programHash: proposal.programHash, fitness: null, status: 'invalid' });
  }

  const record: IterationRecord = {
    iteration: input.iteration,
    status: 'invalid',
    programHash: candidate.programHash,
    parentHash: input.parentHash,
    description: candidate.description,
    points: [],
    fit: null,
    fitness: null,
    failedAttempts,
    proposals: input.iteration === 0 ? 0 : failedAttempts.length + (candidate.ok ? 1 : 0),
    usage: paid.usage,
  };
  if (!candidate.ok || candidate.programHash === null) {
    if (input.iteration === 0) throw ApplicationFailure.nonRetryable(`the ${settings.framework} baseline failed validation: ${candidate.reason}`, 'BaselineInvalid');
    record.error = `every proposal was refused; last: ${candidate.reason}`;
    await controlActivities(`${label}: record invalid`, settings.heartbeatTimeoutS).recordIteration({ runId, record });
    return record;
  }

  const programHash = candidate.programHash;
  const train = (hash: string, size: SizeSpec, seed: number, evaluator: EvaluatorSettings, what: string) =>
    proxyActivities<typeof training>({
      taskQueue: TRAIN_QUEUE,
      startToCloseTimeout: `${settings.trainTimeoutH} hours`,
      heartbeatTimeout: `${settings.heartbeatTimeoutS} seconds`,
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 20, nonRetryableErrorTypes: [CANDIDATE_FAILED] },
      summary: `${what} ${size.name} (~${fmtParams(approxParams(size.dModel, size.nLayers))} params), seed ${seed}, ${evaluator.training.steps} steps`,
    }).trainSize({ runId, framework: settings.framework, programHash: hash, size, seed, evaluator, data: input.data });
  let runs: SeedRun[];
  let stopped: IterationRecord | null = null;
  try {
    if (input.iteration > 0 && settings.screen.enabled && input.baselineHash) {
      // The cheap screen filters; only the full-length training below gives the fitness.
      const screenEv = screenEvaluator(ev, settings.screen.steps);
      const [mine, base] = await Promise.all([programHash, input.baselineHash].map((h, i) => train(h, ev.sizes[0], ev.seeds[0], screenEv, i === 0 ? 'screen' : 'screen baseline')));
      record.screen = { size: mine.size, steps: mine.steps, valLoss: mine.valLoss, baselineValLoss: base.valLoss, ...(mine.graph ? { graph: mine.graph } : {}) };
      if (mine.valLoss > base.valLoss + settings.screen.margin) {
        record.status = 'rejected';
        record.error = `screened out: loss ${mine.valLoss.toFixed(4)} after ${mine.steps} steps at ${mine.size} is worse than the baseline's ${base.valLoss.toFixed(4)} by more than ${settings.screen.margin}`;
        await controlActivities(`${label}: record screened out`, settings.heartbeatTimeoutS).recordIteration({ runId, record });
        return record;
      }
    }
    // Every size with every seed at once: the training queue spreads them over the device workers.
    // With sequential evaluation the first seeds train first, and a candidate worse than its parent
    // on each of them stops there (score/early-stop.ts).
    setCurrentDetails(`${label}: training ${candidate.description} at ${counted(ev.sizes.length, 'size')} × ${counted(ev.seeds.length, 'seed')}`);
    const trainSeeds = (seeds: number[]) => Promise.all(seeds.flatMap((seed) => ev.sizes.map((size) => train(programHash, size, seed, ev, 'train'))));
    const rule = input.iteration > 0 && input.baselinePoints ? earlyStopAfter(settings.fitness, ev.seeds.length) : null;
    const trainAll = async (): Promise<SeedRun[]> => {
      if (rule === null || !patched(EARLY_STOP)) return trainSeeds(ev.seeds);
      const first = ev.seeds.slice(0, rule.after);
      setCurrentDetails(`${label}: training ${candidate.description} at ${counted(ev.sizes.length, 'size')} × the first ${counted(first.length, 'seed')} of ${ev.seeds.length}`);
      const runs = await trainSeeds(first);
      stopped = await controlActivities(`${label}: check after ${counted(first.length, 'seed')}`, settings.heartbeatTimeoutS).scoreFirstSeeds({
        runId,
        record,
        runs,
        seeds: first,
        settings,
        baselinePoints: input.baselinePoints,
        parentPoints: input.parentPoints,
      });
      if (stopped) return runs;
      setCurrentDetails(`${label}: training ${candidate.description} at ${counted(ev.sizes.length, 'size')} × the other ${counted(ev.seeds.length - first.length, 'seed')}`);
      return [...runs, ...(await trainSeeds(ev.seeds.slice(rule.after)))];
    };
    runs = !patched(CANCEL_SIBLING_TRAININGS)
      ? await trainAll()
      : await CancellationScope.cancellable(async () => {
          try {
            return await trainAll();
          } catch (err) {
            // A candidate that failed at one size fails at all of them: free the device workers now
            // rather than when the closed iteration's trainings next heartbeat.
            if (candidateFailed(err)) CancellationScope.current().cancel();
            throw err;
          }
        });
  } catch (err) {
    // A candidate that diverges, times out or crashes during training is invalid, not fatal.
    if (input.iteration > 0 && candidateFailed(err)) {
      record.error = `training failed: ${err.cause.message}`;
      await controlActivities(`${label}: record invalid`, settings.heartbeatTimeoutS).recordIteration({ runId, record });
      return record;
    }
    throw err;
  }
  if (stopped) return stopped;
  return controlActivities(`${label}: score and select`, settings.heartbeatTimeoutS).scoreCandidate({
    runId,
    record,
    runs,
    settings,
    baselinePoints: input.baselinePoints,
    parentPoints: input.parentPoints,
  });
}
