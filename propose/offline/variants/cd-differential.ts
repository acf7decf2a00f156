// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-differential',
  framework: 'coefficient_dynamics',
  title: 'Differential coefficients',
  reference: 'arXiv:2410.05258',
  idea: 'α = softmax₁ − λ_h softmax₂ cancels weight both maps put on irrelevant keys, reported to match a larger baseline with fewer parameters.',
  knobs: ['lambdaInit'],
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

  // Two coefficient maps from the two halves of each head's queries and keys, subtracted
  // (Differential Transformer, arXiv:2410.05258): α = softmax(q¹ h¹ᵀ) − λ_h softmax(q² h²ᵀ).
  // Weight that both maps put on irrelevant context cancels; λ_h is learned per head.
  const lambdaInit = 0.8;
  const lambda = ctx.param('lambda', [H, 1, 1], { constant: lambdaInit }); // λ_h: (H, 1, 1)
  const half = Math.floor(d / 2);
  const [q1, q2] = tf.split(q, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const [k1, k2] = tf.split(k, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const future = tf.mul(tf.sub(1, ctx.causalMask), -1e9); // (T, T)
  // Softmax coefficients with b = 1/√width and A_i = I, masked to j ≤ i.
  const coefficients = (qa: Tensor, ka: Tensor, width: number) =>
    tf.softmax(tf.add(tf.matMul(qa, tf.mul(ka, 1 / Math.sqrt(width)), false, true), future)); // (B, H, T, T)
  const alpha = tf.sub(coefficients(q1, k1, half), tf.mul(lambda, coefficients(q2, k2, d - half))); // (B, H, T, T)

  // As in the paper, each head's output is RMS-normalised and scaled by (1 − λ_init).
  const raw = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  const y = tf.mul(tf.mul(raw, tf.rsqrt(tf.add(tf.mean(tf.square(raw), -1, true), 1e-6))), 1 - lambdaInit); // (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
