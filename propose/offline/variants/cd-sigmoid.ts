// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-sigmoid',
  framework: 'coefficient_dynamics',
  title: 'Sigmoid readout with length bias',
  reference: 'arXiv:2409.04431',
  idea: 'φ = σ(score + β_h) with β_h ≈ −ln T and no normaliser: keys stop competing for a unit budget, which removes the softmax bottleneck on how many keys a head can use at once.',
  knobs: ['sigmoidBiasScale'],
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

  // Readout φ = σ(· + β_h) with no normaliser (η_i = 1): every coefficient is its own gate, so keys do
  // not compete for a fixed budget of weight. β_h starts at −sigmoidBiasScale·ln T, which puts the
  // longest row's total weight near 1 at the start.
  const sigmoidBiasScale = 1;
  const beta = ctx.param('sigmoidBias', [H, 1, 1], { constant: -sigmoidBiasScale * Math.log(T) }); // β_h: (H, 1, 1)
  const alpha = tf.mul(tf.sigmoid(tf.add(score, beta)), ctx.causalMask); // α_ij, exactly 0 for j > i: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
