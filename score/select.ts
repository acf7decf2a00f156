// Scoring a trained candidate against its run's baseline (same sizes, same seeds) and the
// noise-aware decision against its parent: it replaces the parent only when the interval says so.
import type { FitAxis, FitnessInterval, FitnessSettings, FitSummary, SeedRun, SizePoint } from '../contract';
import { EvoError } from '../core/errors';
import { fitPoints } from './scaling';
import { bootstrapFitness, bootstrapSlope, decide, describeInterval, seedDifferences, type SeededPoint } from './fitness';
import { fmtSigned } from '../core/output';

/** Fitness settings when a run or a command gives none; README explains the choice of mode. */
export const DEFAULT_FITNESS: FitnessSettings = { mode: 'loss_delta', level: 0.95, margin: 0, resamples: 2000, earlyStop: 'auto' };

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Groups one program's trainings into one point per size (seeds in the run's order). */
export function sizePoints(runs: SeedRun[], sizes: string[], seeds: number[]): SizePoint[] {
  return sizes.map((size) => {
    const bySeed = seeds.map((seed) => {
      const r = runs.find((x) => x.size === size && x.seed === seed);
      if (!r) throw new EvoError(`no training of size ${size} with seed ${seed}`, 'FIT');
      return r;
    });
    const first = bySeed[0];
    const valLossBySeed = bySeed.map((r) => r.valLoss);
    const graph = bySeed.find((r) => r.graph)?.graph;
    return {
      size,
      nonEmbeddingParams: first.nonEmbeddingParams,
      totalParams: first.totalParams,
      valLoss: mean(valLossBySeed),
      valLossBySeed,
      seeds: [...seeds],
      steps: first.steps,
      backend: first.backend,
      resumedFromStep: Math.max(...bySeed.map((r) => r.resumedFromStep)),
      msPerStep: mean(bySeed.map((r) => r.msPerStep)),
      peakBytes: mean(bySeed.map((r) => r.peakBytes)),
      ...(graph ? { graph } : {}),
    };
  });
}

/** Points cut to some of their seeds (in the order given), e.g. the parent's for a candidate's first seeds. */
export function pointsForSeeds(points: SizePoint[], seeds: number[]): SizePoint[] {
  return points.map((p) => {
    const pick = seeds.map((seed) => {
      const k = p.seeds.indexOf(seed);
      if (k < 0) throw new EvoError(`size ${p.size} has no training with seed ${seed} (it has ${p.seeds.join(', ')})`, 'FIT');
      return p.valLossBySeed[k];
    });
    return { ...p, seeds: [...seeds], valLossBySeed: pick, valLoss: mean(pick) };
  });
}

function seeded(points: SizePoint[], axis: FitAxis): SeededPoint[] {
  return points.map((p) => ({ size: p.size, params: axis === 'total' ? p.totalParams : p.nonEmbeddingParams, lossBySeed: p.valLossBySeed }));
}

export interface Score {
  fit: FitSummary;
  fitness: number;
  fitnessMode: FitnessSettings['mode'];
  fitnessCi: [number, number];
  seedSlope: { fitness: number; ci: [number, number] };
  cost: { timeRatio: number; memoryRatio: number };
}

/** The candidate's fitness in the run's mode with its seed-bootstrap interval, the seed's −slope beside it, and its cost. */
export function scoreAgainstBaseline(cand: SizePoint[], base: SizePoint[], axis: FitAxis, settings: FitnessSettings): Score {
  const { fit } = fitPoints(cand, axis);
  const opts = { level: settings.level, resamples: settings.resamples };
  const f = bootstrapFitness(settings.mode, seeded(cand, axis), seeded(base, axis), opts);
  const s = bootstrapSlope(seeded(cand, axis), opts);
  const [c, b] = [cand[cand.length - 1], base[base.length - 1]];
  return {
    fit: { intercept: fit.intercept, slope: fit.slope, r2: fit.r2, slopeStdErr: fit.slopeStdErr },
    fitness: f.value,
    fitnessMode: settings.mode,
    fitnessCi: [f.lo, f.hi],
    seedSlope: { fitness: s.value, ci: [s.lo, s.hi] },
    cost: { timeRatio: c.msPerStep / b.msPerStep, memoryRatio: c.peakBytes / b.peakBytes },
  };
}

export interface Selection {
  accept: boolean;
  vsParent: FitnessInterval;
  decision: string;
}

/** Accept only when the paired interval of (candidate − parent) lies above the margin. */
export function selectAgainstParent(cand: SizePoint[], parent: SizePoint[], base: SizePoint[], axis: FitAxis, settings: FitnessSettings): Selection {
  const d = decide(settings.mode, seeded(cand, axis), seeded(parent, axis), seeded(base, axis), {
    level: settings.level,
    resamples: settings.resamples,
    margin: settings.margin,
  });
  return { accept: d.accept, vsParent: d.delta, decision: d.reason };
}

/**
 * Sequential evaluation after the candidate's first seeds (score/early-stop.ts): the selection that
 * stops it when it is worse than its parent on each of them, with the reason in words; null when it
 * trains on. `preserving`: the stop provably gives the decision all seeds would have (the `auto`
 * count in loss_delta).
 */
export function stopEarly(
  cand: SizePoint[],
  parent: SizePoint[],
  base: SizePoint[],
  axis: FitAxis,
  settings: FitnessSettings,
  allSeeds: number,
  preserving: boolean,
): Selection | null {
  const perSeed = seedDifferences(settings.mode, seeded(cand, axis), seeded(parent, axis), seeded(base, axis));
  if (!perSeed.every((d) => d < 0)) return null;
  const { vsParent } = selectAgainstParent(cand, parent, base, axis, settings);
  const k = perSeed.length;
  const why = preserving ? 'so the other seeds could not lift its interval above 0' : `the configured early stop (fitness.early_stop: ${k})`;
  return {
    accept: false,
    vsParent,
    decision: `stopped after ${k} of ${allSeeds} seeds, worse than the parent on each (${perSeed.map((d) => fmtSigned(d)).join(', ')}); ${why}: Δ ${describeInterval(vsParent)} over those seeds (${settings.mode})`,
  };
}
