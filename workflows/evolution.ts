// The evolution workflow: one framework's run. Data once, the baseline as iteration 0, then one
// `iteration` child per step, keeping the best (population 1, as in the seed); a `status` query,
// pause/resume/stop signals, search attributes and continue-as-new.
// Deterministic code only: randomness, time and I/O live in activities.
import { ApplicationFailure, condition, continueAsNew, defineQuery, defineSignal, executeChild, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { iterationWorkflowId, type EvolutionInput, type IterationBrief, type IterationInput, type IterationRecord, type RunState, type RunSummary } from '../contract';
import { addTotals, budgetExceeded, budgetMessage, emptyTotals } from '../propose/llm/ledger';
import { EvoBestFitness, EvoFramework, EvoIteration, EvoStatus } from '../contract/search-attributes';
import { controlActivities } from './activities';
import { iteration } from './iteration';
import { usageOfFailure, USAGE_OF_FAILED_ITERATIONS } from './failures';
import { iterationOutcome, iterationSummary, runDetails } from './details';

export const statusQuery = defineQuery<RunState>('status');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const stopSignal = defineSignal('stop');

/** The patch that writes summary.json, naming the run's prepared corpus, before iteration 0 (runs recorded before it wrote it first after iteration 0). */
export const RECORD_DATA_FIRST = 'record-data-first';

/** The message of an iteration that failed on the LLM API (refused us, or stayed down through every retry), if it did. */
function llmFailure(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && typeof e.type === 'string' && /^LLM_/.test(e.type)) return e.message;
  }
  return undefined;
}

function briefOf(r: IterationRecord): IterationBrief {
  return { iteration: r.iteration, status: r.status, programHash: r.programHash, fitness: r.fitness, proposals: r.proposals };
}

/** What a run continued as new by earlier code carried, its whole summary, as the state it stands for. */
function stateOfSummary(summary: RunSummary): RunState {
  const { iterations, ...header } = summary;
  const last = iterations[iterations.length - 1];
  return {
    ...header,
    iterations: iterations.map(briefOf),
    baselinePoints: iterations[0]?.points ?? null,
    bestPoints: iterations.find((it) => it.iteration === summary.best?.iteration)?.points ?? null,
    ...(last ? { lastOutcome: iterationOutcome(last) } : {}),
  };
}

export async function evolution(input: EvolutionInput): Promise<RunState> {
  const { settings } = input;
  const runId = workflowInfo().workflowId;
  const carried = input.carried?.state ?? (input.carried?.summary && stateOfSummary(input.carried.summary));
  // summary.json is composed from this and the archive's records by `writeRunSummary`.
  const state: RunState = carried || {
    workflowId: runId,
    framework: settings.framework,
    profile: settings.evaluator.profile,
    status: 'running',
    iterations: [],
    best: null,
    usage: emptyTotals(),
    baselinePoints: null,
    bestPoints: null,
  };
  // A pause or stop signalled during the last iteration before continuing as new is carried into the new run.
  let paused = state.status === 'paused' || input.carried?.paused === true;
  let stopRequested = input.carried?.stopRequested === true;
  setHandler(statusQuery, () => state);
  setHandler(pauseSignal, () => {
    paused = true;
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  setHandler(stopSignal, () => {
    stopRequested = true;
  });
  let now = input.carried ? 'continued as new' : 'preparing data';
  // Search attributes for the list's filters; current details (no command: replay-safe) for the run's page.
  const publish = () => {
    setCurrentDetails(runDetails(state, settings.iterations, now));
    upsertSearchAttributes([
      { key: EvoFramework, value: settings.framework },
      { key: EvoIteration, value: state.iterations.length === 0 ? 0 : state.iterations[state.iterations.length - 1].iteration },
      { key: EvoStatus, value: state.status },
      ...(state.best ? [{ key: EvoBestFitness, value: state.best.fitness }] : []),
    ]);
  };
  publish();

  const data = input.carried?.data ?? (await controlActivities('prepare data').prepareData(settings.evaluator.data));
  // The archive names the corpus the run trains on (`evo gc` keeps it) before any training reads it.
  state.dataHash = data.hash;
  if (!input.carried && patched(RECORD_DATA_FIRST)) await controlActivities('record data').writeRunSummary(state);
  const proposalsSoFar = () => state.iterations.reduce((n, it) => n + it.proposals, 0);

  const budget = settings.llm?.budgetUsd ?? null;
  for (let i = state.iterations.length; i <= settings.iterations; ) {
    if (i > 0 && budgetExceeded(state.usage, budget)) {
      state.reason = `${budgetMessage(state.usage, budget!)}; no further mutations`;
      stopRequested = true;
    }
    if (paused && !stopRequested) {
      state.status = 'paused';
      now = `paused before iteration ${i}`;
      publish();
      await controlActivities('record pause').writeRunSummary(state);
      await condition(() => !paused || stopRequested);
    }
    if (stopRequested) break;
    state.status = 'running';
    delete state.reason;
    now = `iteration ${i} running`;
    publish();
    let record: IterationRecord;
    try {
      const childInput: IterationInput = {
        runId,
        settings,
        iteration: i,
        data,
        parentHash: state.best?.programHash ?? null,
        parentPoints: state.bestPoints,
        baselinePoints: state.baselinePoints,
        history: state.iterations.map((it) => ({ programHash: it.programHash, fitness: it.fitness, status: it.status })),
        proposalIndex: proposalsSoFar(),
        baselineHash: state.iterations[0]?.programHash ?? null,
      };
      record = await executeChild(iteration, { workflowId: iterationWorkflowId(runId, i), args: [childInput], staticSummary: iterationSummary(childInput) });
    } catch (err) {
      // What a failed iteration paid for still counts (and against the budget).
      const paidFor = usageOfFailure(err);
      if (paidFor && patched(USAGE_OF_FAILED_ITERATIONS)) state.usage = addTotals(state.usage, paidFor);
      // The LLM refusing our credentials, quota or request needs a person, not a retry storm:
      // pause with the reason, and rerun this iteration on `resume` once the worker is fixed.
      const llm = llmFailure(err);
      if (!llm) throw err;
      state.reason = `paused: ${llm} — fix the control worker's LLM settings, then signal resume`;
      paused = true;
      continue;
    }
    // The record itself is in the archive (the child's last step wrote it); the state keeps its brief.
    if (state.iterations.length === 0) state.baselinePoints = record.points;
    state.iterations.push(briefOf(record));
    state.lastOutcome = iterationOutcome(record);
    state.usage = addTotals(state.usage, record.usage);
    if (record.status === 'accepted' && record.fitness !== null && record.programHash) {
      state.best = { iteration: record.iteration, fitness: record.fitness, programHash: record.programHash };
      state.bestPoints = record.points;
    }
    await controlActivities(`record iteration ${i}`).writeRunSummary(state);
    now = `iteration ${i} recorded`;
    publish();
    i++;
    if (workflowInfo().continueAsNewSuggested && i <= settings.iterations) {
      await continueAsNew<typeof evolution>({ settings, carried: { state, data, paused, stopRequested } });
    }
  }
  state.status = stopRequested ? 'stopped' : 'completed';
  now = `${state.iterations.length} iterations recorded`;
  await controlActivities('record final status').writeRunSummary(state);
  publish();
  return state;
}
