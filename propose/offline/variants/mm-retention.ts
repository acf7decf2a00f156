// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-retention',
  framework: 'matrix_mixer',
  title: 'Low rank ∘ Toeplitz decay (retention)',
  reference: 'arXiv:2307.08621',
  idea: 'M = Q Kᵀ ∘ λ_h^{i−j}: a fixed multi-scale decay on a low-rank mixer, recurrent with a d × d state.',
  knobs: ['retentionExponent'],
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

  // Low rank ∘ Toeplitz (retention, RetNet, arXiv:2307.08621): M = (Q Kᵀ/√d) ∘ D with the fixed decay
  // D_ij = λ_h^{i−j} for j ≤ i and λ_h = 1 − 2^{−(retentionExponent + h)}. D is both Toeplitz and
  // 1-semiseparable, so M·V is a recurrence with a d × d state; heads get memories from about
  // 2^retentionExponent tokens upwards.
  const retentionExponent = 5;
  const logLambda = tf.tensor(Array.from({ length: H }, (_, head) => Math.log(1 - Math.pow(2, -(retentionExponent + head)))), [H, 1, 1]); // ln λ_h: (H, 1, 1)
  const positions = tf.range(0, T); // (T)
  const lag = tf.mul(tf.sub(tf.reshape(positions, [T, 1]), tf.reshape(positions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const decay = tf.mul(tf.exp(tf.mul(logLambda, lag)), ctx.causalMask); // D: (H, T, T)
  const M = tf.mul(tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true), decay); // (B, H, T, T)

  // Rows of M are not normalised; RetNet normalises each head's output (GroupNorm, here RMS over d).
  const raw = tf.matMul(M, V); // M·V: (B, H, T, d)
  const Y = tf.mul(raw, tf.rsqrt(tf.add(tf.mean(tf.square(raw), -1, true), 1e-6))); // RMS-normalised over d: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
