// Scaling-law fit over (parameters, final validation loss): the seed's loss = a + b·ln N by
// ordinary least squares, with R² and the slope's standard error. Fitness = −b, as in the seed.
import { EvoError } from '../core/errors';
import type { FitAxis, FitSummary } from '../contract';

export interface ScalingPoint {
  params: number;
  loss: number;
}

export interface ScalingFit extends FitSummary {
  n: number;
}

export function fitScalingLaw(points: ScalingPoint[]): ScalingFit {
  if (points.length < 2) throw new EvoError(`a scaling law needs at least 2 sizes, got ${points.length}`, 'FIT');
  for (const p of points) {
    if (!(p.params > 0) || !Number.isFinite(p.loss)) throw new EvoError(`cannot fit a scaling law through (${p.params}, ${p.loss})`, 'FIT');
  }
  const n = points.length;
  const xs = points.map((p) => Math.log(p.params));
  const ys = points.map((p) => p.loss);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  if (sxx === 0) throw new EvoError('cannot fit a scaling law: every size has the same parameter count', 'FIT');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i] - (intercept + slope * xs[i])) ** 2;
  const r2 = syy === 0 ? 1 : 1 - sse / syy;
  const slopeStdErr = n > 2 ? Math.sqrt(sse / (n - 2) / sxx) : null;
  return { intercept, slope, r2, slopeStdErr, n };
}

/** The seed's fitness: −slope (loss falling faster with size scores higher). */
export function seedFitness(fit: ScalingFit): number {
  return -fit.slope;
}

/** A trained size's parameter counts and final loss, as the evaluator and the pipeline record them. */
export interface SizeLoss {
  nonEmbeddingParams: number;
  totalParams: number;
  valLoss: number;
}

/** The fit over trained sizes on the chosen parameter axis, with the seed's fitness. */
export function fitPoints(points: SizeLoss[], axis: FitAxis): { fit: ScalingFit; fitness: number } {
  const fit = fitScalingLaw(points.map((p) => ({ params: axis === 'total' ? p.totalParams : p.nonEmbeddingParams, loss: p.valLoss })));
  return { fit, fitness: seedFitness(fit) };
}
