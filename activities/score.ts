// Scoring and selection: the candidate's trainings become per-size points, scored against the run's
// baseline with seed-bootstrap intervals, then accepted only when clearly better than its parent.
import { writeIterationRecord } from '../archive';
import { pointsForSeeds, scoreAgainstBaseline, selectAgainstParent, sizePoints, stopEarly } from '../score/select';
import { earlyStopAfter } from '../score/early-stop';
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

/**
 * Sequential evaluation: the candidate after its first seeds (`input.runs` holds only those). One
 * worse than its parent on each of them is recorded rejected, scored on those seeds, and returned;
 * null means it trains its other seeds.
 */
export async function scoreFirstSeeds(input: ScoreInput & { seeds: number[] }): Promise<IterationRecord | null> {
  return underFailureRule(async () => {
    const { settings, seeds } = input;
    const ev = settings.evaluator;
    const rule = earlyStopAfter(settings.fitness, ev.seeds.length);
    if (!input.baselinePoints || !rule) return null;
    const points = sizePoints(input.runs, ev.sizes.map((s) => s.name), seeds);
    const base = pointsForSeeds(input.baselinePoints, seeds);
    const parent = pointsForSeeds(input.parentPoints ?? input.baselinePoints, seeds);
    const check = stopEarly(points, parent, base, ev.fitAxis, settings.fitness, ev.seeds.length, rule.preserving);
    if (!check) return null;
    const record: IterationRecord = {
      ...input.record,
      status: 'rejected',
      points,
      ...scoreAgainstBaseline(points, base, ev.fitAxis, settings.fitness),
      vsParent: check.vsParent,
      decision: check.decision,
    };
    writeIterationRecord(input.runId, record);
    return record;
  });
}
