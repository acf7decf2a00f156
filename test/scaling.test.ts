// Specification of the scaling-law fit: known lines are recovered exactly, noise lowers R².
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitScalingLaw, seedFitness } from '../score/scaling';

test('an exact line loss = a + b·ln N returns its slope, intercept and R² = 1', () => {
  const a = 7.5;
  const b = -0.25;
  const points = [1e4, 3e4, 1e5, 4e5].map((params) => ({ params, loss: a + b * Math.log(params) }));
  const fit = fitScalingLaw(points);
  assert.ok(Math.abs(fit.slope - b) < 1e-12);
  assert.ok(Math.abs(fit.intercept - a) < 1e-10);
  assert.ok(Math.abs(fit.r2 - 1) < 1e-12);
  assert.ok(fit.slopeStdErr !== null && fit.slopeStdErr < 1e-9);
  assert.ok(Math.abs(seedFitness(fit) - 0.25) < 1e-12);
});

test('noisy points: least-squares slope, R² and the slope standard error match a hand computation', () => {
  // x = ln N = 0, 1, 2, 3 (N = e^x); y = 1, 3, 2, 5.
  const points = [0, 1, 2, 3].map((x, i) => ({ params: Math.exp(x), loss: [1, 3, 2, 5][i] }));
  const fit = fitScalingLaw(points);
  // mean x 1.5, mean y 2.75; Sxy = 5.5, Sxx = 5 → b = 1.1, a = 1.1; SST = 8.75, SSE = SST − b²·Sxx = 2.7.
  assert.ok(Math.abs(fit.slope - 1.1) < 1e-12);
  assert.ok(Math.abs(fit.intercept - 1.1) < 1e-12);
  assert.ok(Math.abs(fit.r2 - (1 - 2.7 / 8.75)) < 1e-12);
  assert.ok(Math.abs(fit.slopeStdErr! - Math.sqrt(2.7 / 2 / 5)) < 1e-12);
});

test('two sizes fit exactly but have no slope standard error', () => {
  const fit = fitScalingLaw([
    { params: 100, loss: 3 },
    { params: 1000, loss: 2 },
  ]);
  assert.equal(fit.slopeStdErr, null);
  assert.ok(Math.abs(fit.slope + 1 / Math.log(10)) < 1e-12);
});

test('degenerate inputs are refused with a clear message', () => {
  assert.throws(() => fitScalingLaw([{ params: 10, loss: 1 }]), /at least 2 sizes/);
  assert.throws(() => fitScalingLaw([{ params: 10, loss: 1 }, { params: 10, loss: 2 }]), /same parameter count/);
  assert.throws(() => fitScalingLaw([{ params: 10, loss: NaN }, { params: 20, loss: 2 }]), /cannot fit/);
});
