// The whole world an evolved attention block can see: the tfjs namespace and this context.
// Everything outside the block (embeddings, LayerNorm, FFN, residuals, head) is fixed model code.
import type * as tfc from '@tensorflow/tfjs-core';

export type Tf = typeof tfc;
export type Tensor = tfc.Tensor;
export type Variable = tfc.Variable;

/** How a trainable weight created by the block starts out. */
export type ParamInit =
  | 'glorot' // uniform(±sqrt(6/(fanIn+fanOut))) over the last two dims
  | 'zeros'
  | 'ones'
  | { normal: number } // N(0, std²)
  | { constant: number };

export interface AttentionContext {
  /** Model width D: the block receives x of shape (B, T, D) and must return (B, T, D). */
  readonly dModel: number;
  /** Number of heads H. */
  readonly nHeads: number;
  /** Head dimension d = D / H. */
  readonly headDim: number;
  /** Sequence length T of this call. */
  readonly seqLen: number;
  /** (T, T) float32: 1 where key j ≤ query i (allowed), 0 above the diagonal (the future). */
  readonly causalMask: Tensor;
  /**
   * A trainable weight owned by this layer's attention. Idempotent by name: the first call
   * creates it (seeded), later calls with the same name return the same variable.
   */
  param(name: string, shape: number[], init?: ParamInit): Variable;
}

/** The signature every EVOLVE-BLOCK defines under the name `attention`. */
export type AttentionFn = (tf: Tf, ctx: AttentionContext, x: Tensor) => Tensor;
