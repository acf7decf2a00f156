// Writing the run archive from the workflow: iteration records and summary.json.
import { composeSummary, writeIterationRecord, writeSummary } from '../archive';
import type { IterationRecord, RunState, RunSummary } from '../contract';
import { underFailureRule } from './errors';

/** Record an iteration that ended before selection (every proposal refused, screened out, training failed). */
export async function recordIteration(input: { runId: string; record: IterationRecord }): Promise<void> {
  return underFailureRule(async () => writeIterationRecord(input.runId, input.record));
}

/** summary.json from the workflow's state and the archive's records (a whole summary from runs scheduled before the state was compact). */
export async function writeRunSummary(state: RunState | RunSummary): Promise<void> {
  return underFailureRule(async () => writeSummary(composeSummary(state)));
}
