// Builds the `ctx` an attention block receives: dimensions, the causal mask and a seeded,
// name-scoped parameter registry. Used by the model (one scope per layer) and by validation.
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import type { AttentionContext, ParamInit, Tensor, Variable } from './attention-context';
import { ProgramRejected } from '../core/errors';

/** A stable 31-bit seed from a base seed and a name (tfjs random ops take a number seed). */
export function seedFor(baseSeed: number, name: string): number {
  return createHash('sha256').update(`${baseSeed}:${name}`).digest().readUInt32LE(0) & 0x7fffffff;
}

export function initialValue(shape: number[], init: ParamInit, seed: number): Tensor {
  if (init === 'zeros') return tf.zeros(shape);
  if (init === 'ones') return tf.ones(shape);
  if (init === 'glorot') {
    const fanOut = shape.length >= 1 ? shape[shape.length - 1] : 1;
    const fanIn = shape.length >= 2 ? shape[shape.length - 2] : fanOut;
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.randomUniform(shape, -limit, limit, 'float32', seed);
  }
  if (typeof init === 'object' && init !== null && 'normal' in init) return tf.randomNormal(shape, 0, init.normal, 'float32', seed);
  if (typeof init === 'object' && init !== null && 'constant' in init) return tf.fill(shape, init.constant);
  throw new ProgramRejected(`ctx.param: unknown init ${JSON.stringify(init)} (use 'glorot', 'zeros', 'ones', {normal: std} or {constant: c})`, 'param');
}

/** Trainable weights of one model, keyed by scoped name ("L0.attn.Wqkv"). */
export class ParamStore {
  readonly vars = new Map<string, Variable>();
  constructor(readonly seed: number) {}

  get(name: string, shape: number[], init: ParamInit): Variable {
    const existing = this.vars.get(name);
    if (existing) {
      if (existing.shape.join(',') !== shape.join(',')) {
        throw new ProgramRejected(`ctx.param("${name}") was requested with shape [${shape}] after being created with [${existing.shape}]`, 'param');
      }
      return existing;
    }
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
      throw new ProgramRejected(`ctx.param("${name}"): shape must be a non-empty list of positive integers, got ${JSON.stringify(shape)}`, 'param');
    }
    const v = tf.tidy(() => tf.variable(initialValue(shape, init, seedFor(this.seed, name)), true, name));
    this.vars.set(name, v);
    return v;
  }

  /** Parameters whose name starts with `prefix` and their element count. */
  count(filter: (name: string) => boolean = () => true): number {
    let n = 0;
    for (const [name, v] of this.vars) if (filter(name)) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export interface ContextShape {
  dModel: number;
  nHeads: number;
  seqLen: number;
}

/** The (T, T) lower-triangular mask: 1 where key j ≤ query i. */
export function causalMask(T: number): Tensor {
  return tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
}

/** The context for one attention layer; params are created as `${scope}.${name}`. */
export function attentionContext(store: ParamStore, scope: string, shape: ContextShape, mask: Tensor): AttentionContext {
  const headDim = shape.dModel / shape.nHeads;
  return Object.freeze({
    dModel: shape.dModel,
    nHeads: shape.nHeads,
    headDim,
    seqLen: shape.seqLen,
    causalMask: mask,
    param: (name: string, shape: number[], init: ParamInit = 'glorot') => {
      if (typeof name !== 'string' || !/^[A-Za-z_][\w.]*$/.test(name)) {
        throw new ProgramRejected(`ctx.param: name must be an identifier, got ${JSON.stringify(name)}`, 'param');
      }
      return store.get(`${scope}.${name}`, shape, init);
    },
  });
}
