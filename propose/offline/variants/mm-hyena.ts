// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-hyena',
  framework: 'matrix_mixer',
  title: 'Data-gated Toeplitz mixer (Hyena-style long convolution)',
  reference: 'arXiv:2302.10866',
  idea: 'M^(c) = diag(Q_c) F_h diag(K_c) with an implicit exponential-sum filter: a long convolution made data-dependent by gating, sub-quadratic with FFTs.',
  knobs: ['filterModes'],
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

  // Toeplitz class with data gating (Hyena, arXiv:2302.10866): for each channel c,
  //   M^(c) = diag(Q_c) · F_h · diag(K_c),   (F_h)_ij = Σ_r a_hr e^{−λ_hr (i−j)} for j ≤ i,
  // a causal long convolution whose filter is a sum of filterModes decaying exponentials (as S4D
  // parameterises its kernels), so the filter's size does not grow with T. The gates make M data-dependent.
  const filterModes = 4;
  const amp = ctx.param('filterAmp', [H, filterModes, 1, 1], { normal: 0.5 }); // a_hr: (H, R, 1, 1)
  const logRate = ctx.param('filterLogRate', [H, filterModes, 1, 1], { normal: 1.5 }); // ln λ_hr + 2: (H, R, 1, 1)
  const positions = tf.range(0, T); // (T)
  const lag = tf.mul(tf.sub(tf.reshape(positions, [T, 1]), tf.reshape(positions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  // Rates λ = e^{logRate − 2} start spread around e^{−2}: memories 1/λ from under one token to about 150.
  const modes = tf.exp(tf.mul(tf.neg(tf.exp(tf.sub(logRate, 2))), lag)); // e^{−λ_hr (i−j)}: (H, R, T, T)
  const F = tf.mul(tf.sum(tf.mul(amp, modes), 1), ctx.causalMask); // F_h, 0 for j > i: (H, T, T)
  // tfjs matMul broadcasts batch dimensions but cannot send a gradient back into a broadcast operand,
  // so the filter is broadcast over the batch explicitly.
  const Y = tf.mul(Q, tf.matMul(tf.broadcastTo(F, [B, H, T, T]), tf.mul(K, V))); // diag(Q_c) F diag(K_c) V_c: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
