// Writing the run archive from the workflow: iteration records and summary.json.
import { writeIterationRecord, writeSummary } from '../archive';
import type { IterationRecord, RunSummary } from '../contract';
import { underFailureRule } from './errors';

/** Record an iteration that ended before selection (every proposal refused, screened out, training failed). */
export async function recordIteration(input: { runId: string; record: IterationRecord }): Promise<void> {
  return underFailureRule(async () => writeIterationRecord(input.runId, input.record));
}

export async function writeRunSummary(summary: RunSummary): Promise<void> {
  return underFailureRule(async () => writeSummary(summary));
}
