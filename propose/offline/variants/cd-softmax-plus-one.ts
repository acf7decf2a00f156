// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-softmax-plus-one',
  framework: 'coefficient_dynamics',
  title: 'Softmax + 1 normaliser',
  reference: '"Attention is off by one" (Miller 2023); arXiv:2309.17453',
  idea: 'η_i = 1 + Σ exp(·) lets a head put weight on nothing, removing the attention-sink workaround that grows with model size.',
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

  // Normaliser η_i = 1 + Σ_{j≤i} exp(·) ("Attention is off by one", 2023): coefficients may sum to less
  // than 1, so a head with nothing relevant in its past can output ≈ 0 instead of dumping its weight
  // on some key (the attention-sink behaviour of arXiv:2309.17453).
  const s = tf.add(score, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // future gets −1e9: (B, H, T, T)
  const shift = tf.maximum(tf.max(s, -1, true), 0); // ≥ 0, so the implicit e^0 term also stays ≤ 1: (B, H, T, 1)
  const phi = tf.exp(tf.sub(s, shift)); // (B, H, T, T)
  const eta = tf.add(tf.sum(phi, -1, true), tf.exp(tf.neg(shift))); // η_i e^{−shift}: (B, H, T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
