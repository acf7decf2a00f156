// Fitness of a candidate against its framework's baseline, trained at the same sizes and seeds,
// with paired seed-bootstrap intervals so that an accept/reject decision can see the noise.
import { EvoError } from '../core/errors';
import { fitScalingLaw } from './scaling';
import { mulberry32 } from '../core/random';

/** One model size of one program: `params` is N on the fit axis, `lossBySeed[k]` seed k's final val loss. */
export interface SeededPoint {
  size: string;
  params: number;
  lossBySeed: number[];
}

import type { FitnessMode } from '../contract';

export type { FitnessMode };

export const FITNESS_MODES: readonly FitnessMode[] = ['slope', 'loss_delta', 'param_multiplier', 'extrapolated'];

/** A point estimate on all seeds with a percentile-bootstrap interval at `level` (e.g. 0.95). */
export interface Interval {
  value: number;
  lo: number;
  hi: number;
  level: number;
}

export interface BootstrapOptions {
  /** Number of seed resamples (default 2000). */
  resamples?: number;
  /** Two-sided coverage of the interval (default 0.95). */
  level?: number;
  /** PRNG seed: the same seed gives the same interval (default a fixed constant). */
  seed?: number;
}

export interface DecideOptions extends BootstrapOptions {
  /** The difference's lower bound must exceed this to accept (default 0). */
  margin?: number;
}

export interface Decision {
  accept: boolean;
  delta: Interval;
  reason: string;
}

const DEFAULT_RESAMPLES = 2000;
const DEFAULT_LEVEL = 0.95;
const DEFAULT_SEED = 0x5eed;

/** Extrapolation target, as a multiple of the baseline's largest N. */
const EXTRAPOLATION_FACTOR = 4;

/**
 * The point estimate, computed on seed-mean losses. Higher is better in every mode.
 * - `slope`: the seed's fitness −b of the candidate's own fit loss = a + b·ln N; `base` is only
 *   checked, not used. It rewards a uniformly worse candidate that has more loss left to lose.
 * - `loss_delta`: baseline loss − candidate loss in nats, averaged over sizes with weights ∝ ln N
 *   (baseline N) so larger sizes count more.
 * - `param_multiplier`: ln k, how many times more baseline parameters the candidate's loss is
 *   worth, through the baseline's fitted law, averaged over sizes; needs a baseline with b < 0.
 * - `extrapolated`: baseline's fitted loss − candidate's fitted loss at 4× the baseline's largest N.
 * Every relative mode gives exactly 0 for the baseline scored against itself.
 */
export function fitnessOf(mode: FitnessMode, cand: SeededPoint[], base: SeededPoint[]): number {
  checkMode(mode);
  const n = checkPaired([['baseline', base], ['candidate', cand]]);
  const all = identity(n);
  return statistic(mode, seedMeans(cand, all), seedMeans(base, all), '');
}

/**
 * `fitnessOf` with a paired percentile bootstrap over seed indices: each resample draws n seed
 * indices with replacement and scores the candidate and the baseline on the same seeds. With one
 * seed there is no noise estimate and the interval is [value, value]. A percentile interval is
 * not forced to contain `value` (a skewed statistic may fall outside it).
 */
export function bootstrapFitness(mode: FitnessMode, cand: SeededPoint[], base: SeededPoint[], opts: BootstrapOptions = {}): Interval {
  checkMode(mode);
  const n = checkPaired([['baseline', base], ['candidate', cand]]);
  return bootstrap(n, opts, (idx, where) => statistic(mode, seedMeans(cand, idx), seedMeans(base, idx), where));
}

/**
 * fitness(cand) − fitness(parent), both against `base`, all three resampled with the same seed
 * indices, so noise shared through a seed (init, data order) cancels in the difference.
 * Identical cand and parent give exactly [0, 0].
 */
export function bootstrapDifference(
  mode: FitnessMode,
  cand: SeededPoint[],
  parent: SeededPoint[],
  base: SeededPoint[],
  opts: BootstrapOptions = {},
): Interval {
  checkMode(mode);
  const n = checkPaired([['baseline', base], ['candidate', cand], ['parent', parent]]);
  return bootstrap(n, opts, (idx, where) => {
    const b = seedMeans(base, idx);
    return statistic(mode, seedMeans(cand, idx), b, where) - statistic(mode, seedMeans(parent, idx), b, where);
  });
}

/** fitness(cand) − fitness(parent) on each seed alone, in seed order: what sequential evaluation reads. */
export function seedDifferences(mode: FitnessMode, cand: SeededPoint[], parent: SeededPoint[], base: SeededPoint[]): number[] {
  checkMode(mode);
  const n = checkPaired([['baseline', base], ['candidate', cand], ['parent', parent]]);
  return identity(n).map((k) => {
    const b = seedMeans(base, [k]);
    return statistic(mode, seedMeans(cand, [k]), b, ` (seed ${k + 1})`) - statistic(mode, seedMeans(parent, [k]), b, ` (seed ${k + 1})`);
  });
}

/** The seed's fitness −b of one program's fit, with a seed-resampling interval (degenerate with one seed). */
export function bootstrapSlope(cand: SeededPoint[], opts: BootstrapOptions = {}): Interval {
  const n = checkPaired([['candidate', cand]]);
  return bootstrap(n, opts, (idx) => negSlope(seedMeans(cand, idx)));
}

/**
 * Accept the candidate over its parent iff the lower bound of the paired bootstrap interval of
 * fitness(cand) − fitness(parent) exceeds `margin`. With one seed that is the plain comparison
 * of the two single runs.
 */
export function decide(
  mode: FitnessMode,
  cand: SeededPoint[],
  parent: SeededPoint[],
  base: SeededPoint[],
  opts: DecideOptions = {},
): Decision {
  const margin = opts.margin ?? 0;
  if (!Number.isFinite(margin)) throw new EvoError(`the acceptance margin must be a finite number, got ${margin}`, 'FIT');
  const delta = bootstrapDifference(mode, cand, parent, base, opts);
  const accept = delta.lo > margin;
  // The verdict reads the interval; a non-zero margin only adds why acceptance differs from it.
  let verdict =
    delta.lo > 0 ? 'better than the parent' : delta.hi < 0 ? 'worse than the parent' : 'not distinguishable from the parent';
  if (margin !== 0) {
    const m = signed(margin);
    if (accept && delta.lo > 0) verdict += ` by more than the margin ${m}`;
    else if (accept) verdict += `, but accepted because the lower bound is above the margin ${m}`;
    else if (delta.lo > 0) verdict += ` but not by more than the margin ${m}`;
  }
  const seeds = cand[0].lossBySeed.length;
  const note = seeds === 1 ? ', 1 seed: no noise estimate' : '';
  const reason = `${verdict}: Δ ${describeInterval(delta)} (${mode}, ${percent(delta.level)}${note})`;
  return { accept, delta, reason };
}

/** "+0.041 [+0.022, +0.060]": three decimals, always signed (U+2212 for minus). */
export function describeInterval(i: Interval): string {
  return `${signed(i.value)} [${signed(i.lo)}, ${signed(i.hi)}]`;
}

// ---------------------------------------------------------------------------------------------

function signed(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const digits = Math.abs(x).toFixed(3);
  // A value that rounds to zero prints as +0.000 rather than a sign the digits cannot show.
  return (x < 0 && digits !== '0.000' ? '\u2212' : '+') + digits;
}

function percent(level: number): string {
  return `${Number((level * 100).toPrecision(6))}%`;
}

function checkMode(mode: FitnessMode): void {
  if (!FITNESS_MODES.includes(mode)) {
    throw new EvoError(`unknown fitness mode '${String(mode)}' (expected one of ${FITNESS_MODES.join(', ')})`, 'FIT');
  }
}

/**
 * Programs are compared size by size and seed by seed, so they must share size names in the same
 * order and every point must carry the same number of seeds. The first program (the baseline
 * where there is one) is the reference the others are described against. Returns the seed count.
 */
function checkPaired(programs: Array<[string, SeededPoint[]]>): number {
  const [refName, ref] = programs[0];
  if (!Array.isArray(ref) || ref.length === 0) throw new EvoError(`the ${refName} has no sizes`, 'FIT');
  const n = ref[0].lossBySeed?.length ?? 0;
  if (n === 0) throw new EvoError(`the ${refName} has no seeds at size '${ref[0].size}'`, 'FIT');
  for (const [name, points] of programs) {
    if (!Array.isArray(points) || points.length !== ref.length) {
      throw new EvoError(
        `the ${name} has ${points?.length ?? 0} sizes but the ${refName} has ${ref.length}: programs must be trained at the same sizes`,
        'FIT',
      );
    }
    points.forEach((p, i) => {
      if (p.size !== ref[i].size) {
        throw new EvoError(
          `the ${name}'s size ${i + 1} is '${p.size}' but the ${refName}'s is '${ref[i].size}': sizes must match by name and order`,
          'FIT',
        );
      }
      if (!Number.isFinite(p.params) || !(p.params > 0)) {
        throw new EvoError(`the ${name} has an invalid parameter count ${p.params} at size '${p.size}'`, 'FIT');
      }
      const seeds = p.lossBySeed?.length ?? 0;
      if (seeds !== n) {
        throw new EvoError(
          `the ${name} has ${seeds} seeds at size '${p.size}' but the ${refName} has ${n}: seeds are paired by index, so every program needs the same seeds`,
          'FIT',
        );
      }
      for (const loss of p.lossBySeed) {
        if (!Number.isFinite(loss)) throw new EvoError(`the ${name} has a non-finite loss ${loss} at size '${p.size}'`, 'FIT');
      }
    });
  }
  return n;
}

interface Means {
  params: number[];
  loss: number[];
}

function identity(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

// The same summation order for every program, so identical inputs give bit-identical means and
// the relative modes' differences are exactly zero.
function seedMeans(points: SeededPoint[], idx: number[]): Means {
  return {
    params: points.map((p) => p.params),
    loss: points.map((p) => {
      let sum = 0;
      for (const k of idx) sum += p.lossBySeed[k];
      return sum / idx.length;
    }),
  };
}

function fitOf(m: Means) {
  return fitScalingLaw(m.params.map((params, i) => ({ params, loss: m.loss[i] })));
}

function negSlope(m: Means): number {
  return -fitOf(m).slope;
}

function mean(xs: number[]): number {
  let sum = 0;
  for (const x of xs) sum += x;
  return sum / xs.length;
}

/** `where` names the resample in error messages (empty for the all-seeds estimate). */
function statistic(mode: FitnessMode, c: Means, b: Means, where: string): number {
  switch (mode) {
    case 'slope':
      return negSlope(c);
    case 'loss_delta': {
      const logs = b.params.map((N) => Math.log(N));
      if (logs.some((x) => !(x > 0))) {
        throw new EvoError('loss_delta weights sizes by ln N, so every baseline parameter count must exceed 1', 'FIT');
      }
      const total = logs.reduce((s, x) => s + x, 0);
      let sum = 0;
      for (let i = 0; i < logs.length; i++) sum += (logs[i] / total) * (b.loss[i] - c.loss[i]);
      return sum;
    }
    case 'param_multiplier': {
      // ln N* = (L_C − a)/b at each size; since OLS residuals average to zero, mean_s(ln N* − ln N_C)
      // equals mean_s[(L_B − L_C)/(−b)] + mean_s[ln N_B − ln N_C], which is exactly 0 for the baseline.
      const slope = fitOf(b).slope;
      if (!(slope < 0)) {
        throw new EvoError(
          `param_multiplier needs a baseline whose loss falls with size, but its fitted slope${where} is b = ${slope.toPrecision(3)} ≥ 0; use loss_delta instead`,
          'FIT',
        );
      }
      const lossTerm = mean(b.loss.map((lb, i) => (lb - c.loss[i]) / -slope));
      const paramTerm = mean(b.params.map((nb, i) => Math.log(nb) - Math.log(c.params[i])));
      return lossTerm + paramTerm;
    }
    case 'extrapolated': {
      const fb = fitOf(b);
      const fc = fitOf(c);
      const x = Math.log(EXTRAPOLATION_FACTOR * Math.max(...b.params));
      // Differences first, so identical fits give exactly 0.
      return fb.intercept - fc.intercept + (fb.slope - fc.slope) * x;
    }
  }
}

/** Linear interpolation between order statistics (type 7); exact when the neighbours are equal. */
function quantile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  const j = Math.min(i + 1, sorted.length - 1);
  return sorted[i] === sorted[j] ? sorted[i] : sorted[i] + (h - i) * (sorted[j] - sorted[i]);
}

function bootstrap(n: number, opts: BootstrapOptions, stat: (idx: number[], where: string) => number): Interval {
  const resamples = opts.resamples ?? DEFAULT_RESAMPLES;
  const level = opts.level ?? DEFAULT_LEVEL;
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(resamples) || resamples < 1) throw new EvoError(`resamples must be a positive integer, got ${resamples}`, 'FIT');
  if (!(level > 0 && level < 1)) throw new EvoError(`the interval level must lie strictly between 0 and 1, got ${level}`, 'FIT');
  if (!Number.isFinite(seed)) throw new EvoError(`the bootstrap seed must be a finite number, got ${seed}`, 'FIT');
  const value = stat(identity(n), '');
  // One seed: every resample is that seed, so there is nothing to estimate the noise from.
  if (n === 1) return { value, lo: value, hi: value, level };
  const rng = mulberry32(seed);
  const stats = new Array<number>(resamples);
  const idx = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let j = 0; j < n; j++) idx[j] = Math.floor(rng() * n);
    stats[r] = stat(idx, ' in a seed resample');
  }
  stats.sort((x, y) => x - y);
  return { value, lo: quantile(stats, (1 - level) / 2), hi: quantile(stats, (1 + level) / 2), level };
}
