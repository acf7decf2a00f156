// Durable workflows. `evolution` is one framework's run: data once, the baseline as iteration 0,
// then one `iteration` child per step, keeping the best (population 1, as in the seed).
// Deterministic code only: randomness, time and I/O live in activities.
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  ActivityFailure,
} from '@temporalio/workflow';
import type * as control from '../activities/control';
import type * as training from '../activities/train';
import { screenEvaluator, type EvaluatorSettings, type SizeSpec } from '../evaluator/profiles';
import {
  CONTROL_QUEUE,
  TRAIN_QUEUE,
  type AttemptRecord,
  type EvolutionInput,
  type IterationInput,
  type IterationRecord,
  type RunSummary,
  type SizePoint,
} from '../contract';
import { addTotals, budgetExceeded, budgetMessage, emptyTotals, type UsageTotals } from '../propose/llm/ledger';
import { EvoBestFitness, EvoFramework, EvoIteration, EvoStatus } from '../ops/temporal/search-attributes';

export const statusQuery = defineQuery<RunSummary>('status');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const stopSignal = defineSignal('stop');

const controlActivities = (summary?: string) =>
  proxyActivities<typeof control>({
    taskQueue: CONTROL_QUEUE,
    startToCloseTimeout: '30 minutes',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
    summary,
  });

function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

/** Rough non-embedding size of the baseline at this shape, for the UI's summary line only. */
function approxParams(d: number, layers: number): number {
  return layers * 12 * d * d;
}

export async function iteration(input: IterationInput): Promise<IterationRecord> {
  const { settings, runId } = input;
  const ev = settings.evaluator;
  const label = `iteration ${input.iteration}`;
  const failedAttempts: AttemptRecord[] = [];
  const history = [...input.history];
  let usage: UsageTotals = emptyTotals();
  let candidate: control.ValidationOutcome & { programHash: string | null; description: string } = { ok: false, programHash: null, description: '' };
  const attempts = input.iteration === 0 ? 1 : settings.mutation.maxAttempts;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const proposal = await controlActivities(`${label}: propose (attempt ${attempt})`).proposeCandidate({
      runId,
      settings,
      iteration: input.iteration,
      parentHash: input.parentHash,
      history,
      proposalIndex: input.proposalIndex + attempt - 1,
      failedAttempts,
    });
    usage = addTotals(usage, proposal.usage);
    if (proposal.programHash === null) {
      const reason = proposal.refused ?? 'the reply held no program';
      candidate = { ok: false, reason, programHash: null, description: proposal.description };
      failedAttempts.push({ programHash: null, description: proposal.description, error: reason, kind: 'reply-refused' });
      continue;
    }
    const report = await controlActivities(`${label}: validate ${proposal.programHash}`).validateCandidate({
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
    usage,
  };
  if (!candidate.ok || candidate.programHash === null) {
    if (input.iteration === 0) throw ApplicationFailure.nonRetryable(`the ${settings.framework} baseline failed validation: ${candidate.reason}`, 'BaselineInvalid');
    record.error = `every proposal was refused; last: ${candidate.reason}`;
    await controlActivities(`${label}: record invalid`).recordIteration({ runId, record });
    return record;
  }

  const programHash = candidate.programHash;
  const train = (hash: string, size: SizeSpec, evaluator: EvaluatorSettings, what: string) =>
    proxyActivities<typeof training>({
      taskQueue: TRAIN_QUEUE,
      startToCloseTimeout: `${settings.trainTimeoutH} hours`,
      heartbeatTimeout: `${settings.heartbeatTimeoutS} seconds`,
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 20, nonRetryableErrorTypes: ['CandidateFailed'] },
      summary: `${what} ${size.name} (~${fmtParams(approxParams(size.dModel, size.nLayers))} params), ${evaluator.training.steps} steps`,
    }).trainSize({ runId, framework: settings.framework, programHash: hash, size, evaluator, data: input.data });
  let points: SizePoint[];
  try {
    if (input.iteration > 0 && settings.screen.enabled && input.baselineHash) {
      // The cheap screen filters; only the full-length training below gives the fitness.
      const screenEv = screenEvaluator(ev, settings.screen.steps);
      const [mine, base] = await Promise.all([programHash, input.baselineHash].map((h, i) => train(h, ev.sizes[0], screenEv, i === 0 ? 'screen' : 'screen baseline')));
      record.screen = { size: mine.size, steps: mine.steps, valLoss: mine.valLoss, baselineValLoss: base.valLoss };
      if (mine.valLoss > base.valLoss + settings.screen.margin) {
        record.status = 'rejected';
        record.error = `screened out: loss ${mine.valLoss.toFixed(4)} after ${mine.steps} steps at ${mine.size} is worse than the baseline's ${base.valLoss.toFixed(4)} by more than ${settings.screen.margin}`;
        await controlActivities(`${label}: record screened out`).recordIteration({ runId, record });
        return record;
      }
    }
    points = await Promise.all(ev.sizes.map((size) => train(programHash, size, ev, 'train')));
  } catch (err) {
    // A candidate that diverges, times out or crashes during training is invalid, not fatal.
    if (input.iteration > 0 && err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'CandidateFailed') {
      record.error = `training failed: ${err.cause.message}`;
      await controlActivities(`${label}: record invalid`).recordIteration({ runId, record });
      return record;
    }
    throw err;
  }
  record.points = points;
  const { fit, fitness } = await controlActivities(`${label}: fit scaling law`).fitScaling({ points, fitAxis: ev.fitAxis });
  record.fit = fit;
  record.fitness = fitness;
  record.status = await controlActivities(`${label}: select`).selectCandidate({ runId, record, bestFitness: input.bestFitness });
  return record;
}

/** The message of an iteration that failed on the LLM API (refused us, or stayed down through every retry), if it did. */
function llmFailure(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && typeof e.type === 'string' && /^LLM_/.test(e.type)) return e.message;
  }
  return undefined;
}

function pad(n: number): string {
  return String(n).padStart(3, '0');
}

export async function evolution(input: EvolutionInput): Promise<RunSummary> {
  const { settings } = input;
  const runId = workflowInfo().workflowId;
  const summary: RunSummary = input.carried?.summary ?? {
    workflowId: runId,
    framework: settings.framework,
    profile: settings.evaluator.profile,
    status: 'running',
    iterations: [],
    best: null,
    usage: emptyTotals(),
  };
  let paused = summary.status === 'paused';
  let stopRequested = false;
  setHandler(statusQuery, () => summary);
  setHandler(pauseSignal, () => {
    paused = true;
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  setHandler(stopSignal, () => {
    stopRequested = true;
  });
  const publish = () =>
    upsertSearchAttributes([
      { key: EvoFramework, value: settings.framework },
      { key: EvoIteration, value: summary.iterations.length === 0 ? 0 : summary.iterations[summary.iterations.length - 1].iteration },
      { key: EvoStatus, value: summary.status },
      ...(summary.best ? [{ key: EvoBestFitness, value: summary.best.fitness }] : []),
    ]);
  publish();

  const data = input.carried?.data ?? (await controlActivities('prepare data').prepareData(settings.evaluator.data));
  const proposalsSoFar = () => summary.iterations.reduce((n, it) => n + it.proposals, 0);

  const budget = settings.llm?.budgetUsd ?? null;
  for (let i = summary.iterations.length; i <= settings.iterations; ) {
    if (i > 0 && budgetExceeded(summary.usage, budget)) {
      summary.reason = `${budgetMessage(summary.usage, budget!)}; no further mutations`;
      stopRequested = true;
    }
    if (paused && !stopRequested) {
      summary.status = 'paused';
      publish();
      await controlActivities('record pause').writeRunSummary(summary);
      await condition(() => !paused || stopRequested);
    }
    if (stopRequested) break;
    summary.status = 'running';
    delete summary.reason;
    publish();
    let record: IterationRecord;
    try {
      record = await executeChild(iteration, {
        workflowId: `${runId}/iter-${pad(i)}`,
        args: [
          {
            runId,
            settings,
            iteration: i,
            data,
            parentHash: summary.best?.programHash ?? null,
            bestFitness: summary.best?.fitness ?? null,
            history: summary.iterations.map((it) => ({ programHash: it.programHash, fitness: it.fitness, status: it.status })),
            proposalIndex: proposalsSoFar(),
            baselineHash: summary.iterations[0]?.programHash ?? null,
          },
        ],
      });
    } catch (err) {
      // The LLM refusing our credentials, quota or request needs a person, not a retry storm:
      // pause with the reason, and rerun this iteration on `resume` once the worker is fixed.
      const llm = llmFailure(err);
      if (!llm) throw err;
      summary.reason = `paused: ${llm} — fix the control worker's LLM settings, then signal resume`;
      paused = true;
      continue;
    }
    summary.iterations.push(record);
    summary.usage = addTotals(summary.usage, record.usage);
    if (record.status === 'accepted' && record.fitness !== null && record.programHash) {
      summary.best = { iteration: record.iteration, fitness: record.fitness, programHash: record.programHash };
    }
    await controlActivities(`record iteration ${i}`).writeRunSummary(summary);
    publish();
    i++;
    if (workflowInfo().continueAsNewSuggested && i <= settings.iterations) {
      await continueAsNew<typeof evolution>({ settings, carried: { summary, data } });
    }
  }
  summary.status = stopRequested ? 'stopped' : 'completed';
  await controlActivities('record final status').writeRunSummary(summary);
  publish();
  return summary;
}
