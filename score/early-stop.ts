// Sequential evaluation: a candidate trains its first K seeds, and one that is worse than its parent
// on each of them stops there. K is chosen so that stopping never overturns the full decision: with
// the percentile bootstrap over S seeds, a share (K/S)^S of the resamples draw only those K seeds,
// and in `loss_delta` (a mean of per-seed differences) every such resample is below 0. When that
// share is at least (1 − level), twice what the lower bound may exclude, the full interval's lower
// bound is below 0 as well, so the candidate would have been rejected after all S seeds.
// Pure code: the iteration workflow imports it.
import type { FitnessSettings } from '../contract';

/** The fewest seeds (≥ 2) after which a stop cannot overturn the decision at `level`, or null when none below `seeds` is. */
export function decisionPreservingSeeds(seeds: number, level: number): number | null {
  for (let k = 2; k < seeds; k++) if ((k / seeds) ** seeds >= 1 - level) return k;
  return null;
}

export interface EarlyStop {
  /** Seeds trained before the check. */
  after: number;
  /** Whether a stop provably gives the decision all seeds would have. */
  preserving: boolean;
}

/**
 * After how many seeds a clearly worse candidate stops, or null for no early stop: `auto` uses the
 * decision-preserving count in `loss_delta` and stops nothing in the other modes (their statistics
 * are not means over seeds, so no count is proven safe); a number is used as given while it is below
 * the run's seed count; 0 (or no setting, as in runs started before early stopping) is off.
 */
export function earlyStopAfter(fitness: Pick<FitnessSettings, 'mode' | 'level' | 'earlyStop'>, seeds: number): EarlyStop | null {
  const rule = fitness.earlyStop ?? 0;
  const safe = fitness.mode === 'loss_delta' ? decisionPreservingSeeds(seeds, fitness.level) : null;
  if (rule === 'auto') return safe === null ? null : { after: safe, preserving: true };
  if (!(rule >= 1 && rule < seeds)) return null;
  return { after: rule, preserving: safe !== null && rule >= safe };
}
