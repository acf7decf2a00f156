// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-relu2',
  framework: 'coefficient_dynamics',
  title: 'Squared-ReLU readout, η_i = i',
  reference: 'arXiv:2202.10447 (FLASH); arXiv:2109.08668 (Primer)',
  idea: "φ = ReLU(·)² divided by the number of keys, as in FLASH: exactly sparse coefficients without exp, using the activation that Primer's evolutionary search found to scale well.",
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

  // Readout φ = ReLU(·)² with η_i = i, the number of keys: no exp, keys with negative scores get exactly
  // zero weight, and the weights do not have to sum to 1.
  const phi = tf.mul(tf.square(tf.relu(score)), ctx.causalMask); // φ(q_iᵀ h_ij), 0 for j > i: (B, H, T, T)
  const eta = tf.sum(ctx.causalMask, -1, true); // η_i = i: (T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
