// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-output-gate',
  framework: 'coefficient_dynamics',
  title: 'Sigmoid output gate',
  reference: 'arXiv:2505.06708',
  idea: 'y_i ⊙ σ(x_i W_g) adds a cheap multiplicative non-linearity and removes attention sinks; reported to help consistently across model sizes.',
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

  // Input scale b_j = 1/√d and no dynamics (A_i = I): h_ij = k_j / √d for every i ≥ j.
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)

  // Readout φ = exp over the causal past only (future positions get −1e9 before exp).
  const future = tf.mul(tf.sub(1, ctx.causalMask), -1e9); // (T, T)
  const s = tf.add(score, future); // (B, H, T, T)
  const phi = tf.exp(tf.sub(s, tf.max(s, -1, true))); // (B, H, T, T), shifted for stability
  const eta = tf.sum(phi, -1, true); // η_i: (B, H, T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)

  // Output gate σ(x W_g), one gate per channel (arXiv:2505.06708): a position can switch off what its
  // heads read, so no head has to park weight on a sink token when nothing in the past is relevant.
  const Wg = ctx.param('Wg', [D, D], 'glorot');
  const gate = tf.sigmoid(tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), Wg), [B, T, D])); // (B, T, D)
  return tf.mul(gate, tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D])); // gated (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
