// Scoring and selection: the candidate's trainings become per-size points, scored against the run's
// baseline with seed-bootstrap intervals, then accepted only when clearly better than its parent.
import { writeIterationRecord } from '../archive';
import { scoreAgainstBaseline, selectAgainstParent, sizePoints } from '../score/select';
import type { IterationRecord, RunSettings, SeedRun, SizePoint } from '../contract';
import { underFailureRule } from './errors';

export interface ScoreInput {
  runId: string;
  /** The iteration so far (proposal, attempts, usage); scoring fills in points, fitness and the decision. */
  record: IterationRecord;
  runs: SeedRun[];
  settings: RunSettings;
  /** Null at iteration 0: the baseline is scored against itself (fitness 0 in every relative mode). */
  baselinePoints: SizePoint[] | null;
  parentPoints: SizePoint[] | null;
}

export async function scoreCandidate(input: ScoreInput): Promise<IterationRecord> {
  return underFailureRule(async () => {
    const { settings, baselinePoints } = input;
    const ev = settings.evaluator;
    const points = sizePoints(input.runs, ev.sizes.map((s) => s.name), ev.seeds);
    const base = baselinePoints ?? points;
    const score = scoreAgainstBaseline(points, base, ev.fitAxis, settings.fitness);
    const selection = baselinePoints ? selectAgainstParent(points, input.parentPoints ?? base, base, ev.fitAxis, settings.fitness) : null;
    const record: IterationRecord = {
      ...input.record,
      status: selection === null || selection.accept ? 'accepted' : 'rejected',
      points,
      ...score,
      ...(selection ? { vsParent: selection.vsParent, decision: selection.decision } : { decision: 'the baseline: every candidate is scored against it' }),
    };
    writeIterationRecord(input.runId, record);
    return record;
  });
}
