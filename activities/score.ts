// Scoring and selection: the scaling-law fit of a candidate's sizes, and the decision against the best.
import { writeIterationRecord } from '../archive';
import { fitPoints } from '../score/scaling';
import type { FitAxis, IterationRecord, IterationStatus, SizePoint } from '../contract';
import { userErrorsAreFinal } from './errors';

export async function fitScaling(input: { points: SizePoint[]; fitAxis: FitAxis }): Promise<{ fit: IterationRecord['fit']; fitness: number }> {
  return userErrorsAreFinal(async () => {
    const { fit, fitness } = fitPoints(input.points, input.fitAxis);
    return { fit: { intercept: fit.intercept, slope: fit.slope, r2: fit.r2, slopeStdErr: fit.slopeStdErr }, fitness };
  });
}

/** Population 1, as in the seed: a candidate is accepted when it beats the best so far. */
export async function selectCandidate(input: { runId: string; record: IterationRecord; bestFitness: number | null }): Promise<IterationStatus> {
  const { record, bestFitness } = input;
  const status: IterationStatus =
    record.fitness !== null && (bestFitness === null || record.fitness > bestFitness) ? 'accepted' : 'rejected';
  writeIterationRecord(input.runId, { ...record, status });
  return status;
}
