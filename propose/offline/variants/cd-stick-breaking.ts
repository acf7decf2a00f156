// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-stick-breaking',
  framework: 'coefficient_dynamics',
  title: 'Stick-breaking readout',
  reference: 'arXiv:2410.17980',
  idea: 'α_ij = β_ij Π_{j<l≤i}(1 − β_il) allocates weight from the nearest key backwards, a built-in recency bias that needs no position encoding and length-generalises.',
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
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads); // each (B, H, T, d)

  // Input scale b_j = 1/√d and no dynamics (A_i = I), as in the baseline.
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)

  // Readout φ = stick-breaking (arXiv:2410.17980): the nearest key takes a fraction β_ii = σ(score_ii)
  // of the weight, the next one a fraction of what is left, and so on back in time:
  //   α_ij = β_ij Π_{j<l≤i} (1 − β_il),   no normaliser (what is left over goes nowhere).
  // Recency comes from the readout itself, so no position encoding is needed. In log space
  // ln β_ij = −softplus(−score_ij), and the product is a sum of ln(1 − β_il) = −softplus(score_il) over
  // j < l ≤ i: one matmul with the strictly lower-triangular [l > j].
  const later = tf.sub(ctx.causalMask, tf.eye(T)); // [l > j], rows l, columns j: (T, T)
  const logRemaining = tf.matMul(tf.mul(tf.neg(tf.softplus(score)), ctx.causalMask), later); // Σ_{j<l≤i} ln(1 − β_il): (B, H, T, T)
  const alpha = tf.mul(tf.exp(tf.sub(logRemaining, tf.softplus(tf.neg(score)))), ctx.causalMask); // α_ij ≤ 1, 0 for j > i: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
