// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-length-scaled-temperature',
  framework: 'coefficient_dynamics',
  title: 'Length-scaled temperature (Scalable-Softmax)',
  reference: 'arXiv:2501.19399',
  idea: 'Scores scaled by c_h ln i so the peak coefficient does not flatten as the number of keys grows, keeping long contexts as usable as short ones.',
  knobs: ['lengthScaleInit'],
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

  // Scale that grows with the number of keys: score_ij = c_h ln i · q_iᵀ k_j/√d (Scalable-Softmax,
  // arXiv:2501.19399). Under a fixed scale the largest coefficient fades as i grows; a ln i scale keeps
  // a head able to focus at any context length. c_h is learned per head (ln 1 = 0 is harmless: the
  // first query has a single key).
  const lengthScaleInit = 0.5;
  const c = ctx.param('lengthScale', [H, 1, 1], { constant: lengthScaleInit }); // c_h: (H, 1, 1)
  const logLength = tf.reshape(tf.log(tf.range(1, T + 1)), [T, 1]); // ln i for queries i = 1…T: (T, 1)
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.mul(tf.matMul(q, h, false, true), tf.mul(c, logLength)); // c_h ln i · q_iᵀ h_ij: (B, H, T, T)

  // Readout φ = exp over the causal past, η_i = Σ_{j≤i} exp(·), as in the baseline.
  const s = tf.add(score, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // future gets −1e9: (B, H, T, T)
  const phi = tf.exp(tf.sub(s, tf.max(s, -1, true))); // (B, H, T, T), shifted for stability
  const alpha = tf.div(phi, tf.sum(phi, -1, true)); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
