// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-low-rank',
  framework: 'matrix_mixer',
  title: 'Low-rank mixer (linear attention, elu + 1)',
  reference: 'arXiv:2006.16236',
  idea: 'M = mask ∘ rownorm(φ(Q)φ(K)ᵀ) has rank ≤ d before masking, giving a recurrent form with cost linear in T.',
  knobs: [],
} satisfies VariantMeta;

// EVOLVE-BLOCK-START
function attention(tf: Tf, ctx: AttentionContext, x: Tensor): Tensor {
  const [B, T, D] = x.shape;
  const H = ctx.nHeads;
  const d = ctx.headDim;
  const Wqkv = ctx.param('Wqkv', [D, 3 * D], 'glorot');
  const qkv = tf.matMul(tf.reshape(x, [B * T, D]), Wqkv); // (B·T, 3D)
  const heads = (t: Tensor) => tf.transpose(tf.reshape(t, [B, T, H, d]), [0, 2, 1, 3]); // (B, T, D) → (B, H, T, d)
  const [Q, K, V] = tf.split(qkv, 3, 1).map(heads); // X W_Q, X W_K, X W_V: each (B, H, T, d)

  // Low-rank class: M = causal mask ∘ row-normalise(φ(Q) φ(K)ᵀ) with φ = elu + 1 > 0 (linear attention,
  // arXiv:2006.16236). Before masking M has rank ≤ d, which gives M·V a recurrent form with a d × d state;
  // it is written densely here because that is the simplest at short T.
  const phi = (t: Tensor) => tf.add(tf.elu(t), 1); // (B, H, T, d)
  const A = tf.mul(tf.matMul(phi(Q), phi(K), false, true), ctx.causalMask); // (B, H, T, T)
  const M = tf.div(A, tf.add(tf.sum(A, -1, true), 1e-6)); // rows sum to 1: (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
