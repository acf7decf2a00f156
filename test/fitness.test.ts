// Specification of the fitness modes and their paired seed-bootstrap intervals: known values on
// synthetic scaling laws, exact zeros for the baseline against itself, and the accept rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EvoError } from '../core/errors';
import {
  FITNESS_MODES,
  SeededPoint,
  bootstrapDifference,
  bootstrapFitness,
  bootstrapSlope,
  decide,
  describeInterval,
  fitnessOf,
  seedDifferences,
} from '../score/fitness';
import { decisionPreservingSeeds, earlyStopAfter } from '../score/early-stop';
import { mulberry32 } from '../core/random';

const A = 7.5;
const B = -0.25;
const SIZES: Array<[string, number]> = [
  ['s', 1e4],
  ['m', 3e4],
  ['l', 1e5],
  ['xl', 4e5],
];
const RELATIVE = FITNESS_MODES.filter((m) => m !== 'slope');
// Per-seed offsets that sum to zero exactly in binary (multiples of 1/64), so the seed means are the law.
const CANCELLING = [0.03125, -0.015625, -0.03125, 0.015625];

/** A program whose seed k at size i has loss f(ln N_i, k, i); params default to the shared sizes. */
function program(f: (lnN: number, k: number, i: number) => number, seeds: number, params?: number[]): SeededPoint[] {
  return SIZES.map(([size, N], i) => {
    const n = params ? params[i] : N;
    return { size, params: n, lossBySeed: Array.from({ length: seeds }, (_, k) => f(Math.log(n), k, i)) };
  });
}

/** Deterministic pseudo-noise in [−0.5, 0.5) for seed k at size i; `salt` separates programs. */
function jitter(i: number, k: number, salt: number): number {
  const x = Math.sin(i * 12.9898 + k * 78.233 + salt * 37.719) * 43758.5453;
  return x - Math.floor(x) - 0.5;
}

const near = (actual: number, expected: number, tol = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);

const base = program((x, k) => A + B * x + CANCELLING[k], 4);

test('a candidate uniformly 0.1 nats lower scores loss_delta 0.1, param_multiplier 0.1/(−b) and extrapolated 0.1', () => {
  const cand = program((x, k) => A + B * x + CANCELLING[k] - 0.1, 4);
  near(fitnessOf('loss_delta', cand, base), 0.1);
  near(fitnessOf('param_multiplier', cand, base), 0.1 / -B);
  near(fitnessOf('extrapolated', cand, base), 0.1, 1e-11);
});

test('the baseline scored against itself is exactly 0 in every relative mode', () => {
  for (const mode of RELATIVE) assert.equal(fitnessOf(mode, base, base), 0, mode);
  const noisy = program((x, k, i) => A + B * x + 0.05 * jitter(i, k, 1), 5);
  for (const mode of RELATIVE) assert.equal(fitnessOf(mode, noisy, noisy), 0, `${mode} (noisy)`);
});

test('the slope mode returns the seed fitness −b of the candidate’s own fit', () => {
  near(fitnessOf('slope', base, base), -B);
  const steeper = program((x) => A + (B - 0.05) * x, 4);
  near(fitnessOf('slope', steeper, base), -(B - 0.05));
});

test('loss_delta weights each size by ln N of the baseline', () => {
  // ln N = 1 and 3: weights 1/4 and 3/4; differences 0.4 and 0 give 0.1.
  const two = (d: number[]): SeededPoint[] => [
    { size: 'a', params: Math.exp(1), lossBySeed: [3 - d[0]] },
    { size: 'b', params: Math.exp(3), lossBySeed: [2 - d[1]] },
  ];
  near(fitnessOf('loss_delta', two([0.4, 0]), two([0, 0])), 0.1);
  near(fitnessOf('loss_delta', two([0, 0.4]), two([0, 0])), 0.3);
});

test('param_multiplier: the same losses from twice the parameters score ln k = −ln 2', () => {
  const doubled = program((_x, k, i) => A + B * Math.log(SIZES[i][1]) + CANCELLING[k], 4, SIZES.map(([, N]) => 2 * N));
  near(fitnessOf('param_multiplier', doubled, base), -Math.log(2));
});

test('extrapolated compares each program’s own fit at 4× the baseline’s largest N', () => {
  const cand = program((x) => A + 0.3 + (B - 0.04) * x, 4);
  const x = Math.log(4 * 4e5);
  near(fitnessOf('extrapolated', cand, base), -0.3 + 0.04 * x, 1e-11);
});

test('a candidate worse everywhere but steeper is positive under slope and negative under loss_delta and param_multiplier', () => {
  // Extra loss 0.8 − 0.05·ln N stays positive over ln N ∈ [9.2, 12.9]: worse at every size.
  const cand = program((x, k) => A + 0.8 + (B - 0.05) * x + CANCELLING[k], 4);
  for (const p of cand) assert.ok(p.lossBySeed[0] > base.find((q) => q.size === p.size)!.lossBySeed[0]);
  assert.ok(fitnessOf('slope', cand, base) - fitnessOf('slope', base, base) > 0);
  assert.ok(bootstrapDifference('slope', cand, base, base, { resamples: 500 }).lo > 0);
  assert.ok(fitnessOf('loss_delta', cand, base) < 0);
  assert.ok(fitnessOf('param_multiplier', cand, base) < 0);
});

const noisyBase = (amp: number) => program((x, k, i) => A + B * x + amp * jitter(i, k, 2), 8);
const noisyCand = (amp: number) => program((x, k, i) => A + B * x - 0.1 + amp * jitter(i, k, 3), 8);

test('the bootstrap interval contains the point estimate, which is computed on all seeds', () => {
  for (const mode of FITNESS_MODES) {
    const i = bootstrapFitness(mode, noisyCand(0.04), noisyBase(0.04), { resamples: 500 });
    assert.equal(i.value, fitnessOf(mode, noisyCand(0.04), noisyBase(0.04)), mode);
    assert.ok(i.lo <= i.value && i.value <= i.hi, `${mode}: ${describeInterval(i)}`);
    assert.ok(i.lo < i.hi, mode);
    assert.equal(i.level, 0.95);
  }
});

test('the bootstrap interval is degenerate when every seed gives the same loss', () => {
  const cand = program((x) => A + B * x - 0.1, 6);
  const flat = program((x) => A + B * x, 6);
  for (const mode of FITNESS_MODES) {
    const i = bootstrapFitness(mode, cand, flat, { resamples: 500 });
    assert.equal(i.lo, i.value, mode);
    assert.equal(i.hi, i.value, mode);
  }
});

test('the bootstrap interval widens with seed noise', () => {
  for (const mode of FITNESS_MODES) {
    const width = (amp: number) => {
      const i = bootstrapFitness(mode, noisyCand(amp), noisyBase(amp), { resamples: 500 });
      return i.hi - i.lo;
    };
    assert.ok(width(0.01) < width(0.03) && width(0.03) < width(0.09), mode);
  }
});

test('the bootstrap is deterministic for a fixed seed and changes with the seed', () => {
  const run = (seed?: number) => bootstrapFitness('slope', noisyCand(0.04), noisyBase(0.04), { seed, resamples: 500 });
  assert.deepEqual(run(7), run(7));
  assert.deepEqual(run(), run());
  assert.notDeepEqual(run(7), run(8));
});

test('the level option sets the coverage: a 50% interval lies inside the 95% one', () => {
  const wide = bootstrapFitness('loss_delta', noisyCand(0.04), noisyBase(0.04), { level: 0.95 });
  const narrow = bootstrapFitness('loss_delta', noisyCand(0.04), noisyBase(0.04), { level: 0.5 });
  assert.equal(narrow.level, 0.5);
  assert.ok(wide.lo <= narrow.lo && narrow.hi <= wide.hi);
});

test('the paired difference of identical candidate and parent is exactly [0, 0] in every mode', () => {
  for (const mode of FITNESS_MODES) {
    assert.deepEqual(bootstrapDifference(mode, noisyCand(0.04), noisyCand(0.04), noisyBase(0.04), { resamples: 500 }), { value: 0, lo: 0, hi: 0, level: 0.95 }, mode);
  }
});

test('the baseline plus seed-paired noise that averages to zero has an interval containing 0 and is not accepted', () => {
  // Each seed's offset is shared by every size (as an init or data order would be) and the offsets sum to zero.
  const offsets = [0.02, -0.02, 0.03, -0.03, 0.01, -0.01, 0.015, -0.015];
  const b = noisyBase(0.04);
  const cand = b.map((p) => ({ ...p, lossBySeed: p.lossBySeed.map((l, k) => l + offsets[k]) }));
  for (const mode of RELATIVE) {
    const d = decide(mode, cand, b, b, { resamples: 500 });
    assert.ok(d.delta.lo < 0 && 0 < d.delta.hi, `${mode}: ${describeInterval(d.delta)}`);
    assert.equal(d.accept, false, mode);
    assert.match(d.reason, /^not distinguishable from the parent: Δ /);
  }
});

test('a clear improvement over the parent is accepted and reported as better', () => {
  for (const mode of RELATIVE) {
    const d = decide(mode, noisyCand(0.02), noisyBase(0.02), noisyBase(0.02), { resamples: 500 });
    assert.equal(d.accept, true, mode);
    assert.ok(d.delta.lo > 0);
    assert.match(d.reason, new RegExp(`^better than the parent: Δ \\+\\d\\.\\d{3} \\[\\+\\d\\.\\d{3}, \\+\\d\\.\\d{3}\\] \\(${mode}, 95%\\)$`));
  }
});

test('a clear regression is rejected and reported as worse', () => {
  const d = decide('loss_delta', noisyBase(0.02), noisyCand(0.02), noisyBase(0.02));
  assert.equal(d.accept, false);
  assert.ok(d.delta.hi < 0);
  assert.match(d.reason, /^worse than the parent: Δ −0\.\d{3} \[−0\.\d{3}, −0\.\d{3}\] \(loss_delta, 95%\)$/);
});

test('a margin raises the bar: an improvement smaller than the margin is not accepted', () => {
  const d = decide('loss_delta', noisyCand(0.02), noisyBase(0.02), noisyBase(0.02), { margin: 0.5 });
  assert.equal(d.accept, false);
  assert.match(d.reason, /^better than the parent but not by more than the margin \+0\.500: /);
});

test('with one seed the interval is [value, value] and decide is the plain comparison of the two runs', () => {
  const one = (shift: number) => program((x) => A + B * x + shift, 1);
  for (const mode of FITNESS_MODES) {
    const i = bootstrapFitness(mode, one(-0.1), one(0));
    assert.equal(i.lo, i.value);
    assert.equal(i.hi, i.value);
  }
  const better = decide('loss_delta', one(-0.1), one(0), one(0));
  assert.equal(better.accept, true);
  assert.equal(better.reason, 'better than the parent: Δ +0.100 [+0.100, +0.100] (loss_delta, 95%, 1 seed: no noise estimate)');
  assert.equal(decide('loss_delta', one(0.1), one(0), one(0)).accept, false);
});

test('bootstrapSlope gives the seed fitness −b with a seed-resampling interval', () => {
  const exact = bootstrapSlope(base);
  near(exact.value, -B);
  const noisy = bootstrapSlope(noisyBase(0.04));
  assert.equal(noisy.value, fitnessOf('slope', noisyBase(0.04), noisyBase(0.04)));
  assert.ok(noisy.lo < noisy.value && noisy.value < noisy.hi);
  const single = bootstrapSlope(program((x) => A + B * x, 1));
  assert.equal(single.lo, single.hi);
});

test('describeInterval prints three decimals with explicit signs', () => {
  assert.equal(describeInterval({ value: 0.041, lo: 0.022, hi: 0.06, level: 0.95 }), '+0.041 [+0.022, +0.060]');
  assert.equal(describeInterval({ value: 0.004, lo: -0.01, hi: 0.018, level: 0.95 }), '+0.004 [−0.010, +0.018]');
  assert.equal(describeInterval({ value: -0.0001, lo: -0, hi: 0, level: 0.95 }), '+0.000 [+0.000, +0.000]');
});

test('mismatched seed counts, sizes or size order are refused with an EvoError', () => {
  const isFitError = (err: unknown) => err instanceof EvoError && err.code === 'FIT';
  const fewerSeeds = program((x) => A + B * x, 3);
  assert.throws(() => fitnessOf('loss_delta', fewerSeeds, base), isFitError);
  assert.throws(() => fitnessOf('loss_delta', fewerSeeds, base), /3 seeds at size 's' but the baseline has 4/);
  const ragged = base.map((p, i) => (i === 2 ? { ...p, lossBySeed: p.lossBySeed.slice(1) } : p));
  assert.throws(() => bootstrapFitness('loss_delta', ragged, base), /seeds are paired by index/);
  assert.throws(() => fitnessOf('loss_delta', base.slice(1), base), /3 sizes but the baseline has 4/);
  const swapped = [base[1], base[0], ...base.slice(2)];
  assert.throws(() => fitnessOf('extrapolated', swapped, base), /size 1 is 'm' but the baseline's is 's'/);
  const renamed = base.map((p, i) => (i === 3 ? { ...p, size: 'xxl' } : p));
  assert.throws(() => bootstrapDifference('loss_delta', base, renamed, base), isFitError);
  assert.throws(() => decide('loss_delta', base, base, fewerSeeds), isFitError);
  assert.throws(() => fitnessOf('bogus' as never, base, base), /unknown fitness mode 'bogus'/);
});

test('param_multiplier refuses a baseline whose loss does not fall with size (b ≥ 0)', () => {
  const flat = program(() => 4, 4);
  const rising = program((x) => 2 + 0.1 * x, 4);
  for (const b of [flat, rising]) {
    assert.throws(
      () => fitnessOf('param_multiplier', b, b),
      (err: unknown) => err instanceof EvoError && err.code === 'FIT' && /loss falls with size.*≥ 0/.test(err.message) && !err.message.includes('\n'),
    );
  }
  // The other relative modes have no exchange rate to invert and still score a flat baseline.
  assert.equal(fitnessOf('loss_delta', flat, flat), 0);
});

test('sequential evaluation: the decision-preserving seed count, and what each setting turns on', () => {
  // (k/S)^S ≥ 1 − level: 5 seeds → 3 (0.6^5 = 0.078; 0.4^5 = 0.010), 6 → 4, 4 → 2, 3 → 2; 2 seeds leave nothing to save.
  assert.deepEqual([2, 3, 4, 5, 6, 8, 10].map((s) => decisionPreservingSeeds(s, 0.95)), [null, 2, 2, 3, 4, 6, 8]);
  assert.equal(decisionPreservingSeeds(5, 0.99), 2, 'a stricter level lowers the bound, so fewer worse seeds already sink it (0.4^5 = 0.0102 ≥ 0.01)');
  const f = { mode: 'loss_delta' as const, level: 0.95 };
  assert.deepEqual(earlyStopAfter({ ...f, earlyStop: 'auto' }, 5), { after: 3, preserving: true });
  assert.deepEqual(earlyStopAfter({ ...f, earlyStop: 2 }, 5), { after: 2, preserving: false });
  assert.deepEqual(earlyStopAfter({ ...f, earlyStop: 4 }, 5), { after: 4, preserving: true });
  assert.equal(earlyStopAfter({ ...f, earlyStop: 'auto' }, 1), null, 'one seed: nothing to stop early');
  assert.equal(earlyStopAfter({ ...f, earlyStop: 5 }, 5), null);
  assert.equal(earlyStopAfter({ ...f, earlyStop: 0 }, 5), null);
  assert.equal(earlyStopAfter({ ...f, earlyStop: undefined }, 5), null, 'runs started before early stopping: off');
  assert.equal(earlyStopAfter({ mode: 'param_multiplier', level: 0.95, earlyStop: 'auto' }, 5), null, 'not proven for a statistic that is not a mean over seeds');
});

test('seed differences: fitness(candidate) − fitness(parent) on each seed alone', () => {
  const base = program((lnN, k) => A + B * lnN + CANCELLING[k], 4);
  const parent = program((lnN, k) => A + B * lnN + CANCELLING[k] - 0.01, 4);
  const cand = program((lnN, k) => A + B * lnN + CANCELLING[k] - 0.01 + [0.02, -0.03, 0.04, -0.05][k], 4);
  const d = seedDifferences('loss_delta', cand, parent, base);
  [-0.02, 0.03, -0.04, 0.05].forEach((x, k) => assert.ok(Math.abs(d[k] - x) < 1e-12, `seed ${k}: ${d[k]}`));
  assert.deepEqual(seedDifferences('loss_delta', parent, parent, base), [0, 0, 0, 0]);
});

test('sequential evaluation never overturns a decision: whenever a candidate is worse than its parent on each of its first K seeds, all S seeds reject it too', () => {
  const rand = mulberry32(7);
  let stops = 0;
  for (const seeds of [3, 4, 5, 6]) {
    const k = decisionPreservingSeeds(seeds, 0.95)!;
    for (let trial = 0; trial < 300; trial++) {
      // A candidate around its parent with per-seed noise, sometimes better on average.
      const shift = (rand() - 0.3) * 0.02;
      const noise = Array.from({ length: seeds }, () => (rand() - 0.5) * 0.04);
      const base = program((lnN, s, i) => A + B * lnN + jitter(i, s, 1) * 0.02, seeds);
      const parent = program((lnN, s, i) => A + B * lnN + jitter(i, s, 2) * 0.02, seeds);
      const cand = program((lnN, s, i) => A + B * lnN + jitter(i, s, 2) * 0.02 - shift + noise[s], seeds);
      const firstK = (p: SeededPoint[]) => p.map((x) => ({ ...x, lossBySeed: x.lossBySeed.slice(0, k) }));
      if (!seedDifferences('loss_delta', firstK(cand), firstK(parent), firstK(base)).every((x) => x < 0)) continue;
      stops++;
      const all = decide('loss_delta', cand, parent, base);
      assert.equal(all.accept, false, `${seeds} seeds, trial ${trial}: stopped after ${k}, but all seeds accept: ${all.reason}`);
    }
  }
  assert.ok(stops > 100, `the rule fired ${stops} times`);
});
