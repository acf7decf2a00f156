// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-retention',
  framework: 'test_time_regression',
  title: 'Linear regression with exponential recency (retention)',
  reference: 'arXiv:2307.08621',
  idea: 'o_i = Σ λ_h^{i−j} (q_i·k_j) v_j: a decayed linear fit with a d × d recurrent state and multi-scale per-head memories.',
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
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads); // queries, keys, values: each (B, H, T, d)

  // Linear regression m(k) = W k with the key covariance replaced by the identity and recency weights
  // γ_ij = λ_h^{i−j} (retention, RetNet, arXiv:2307.08621):
  //   W_i = Σ_{j≤i} λ_h^{i−j} v_j k_jᵀ/√d,   o_i = W_i q_i = Σ_{j≤i} λ_h^{i−j} (q_i·k_j/√d) v_j,
  // a recurrence with a d × d state. Heads get λ_h = 1 − 2^{−(retentionExponent + h)}: memories from
  // about 2^retentionExponent tokens upwards.
  const retentionExponent = 5;
  const logLambda = tf.tensor(Array.from({ length: H }, (_, head) => Math.log(1 - Math.pow(2, -(retentionExponent + head)))), [H, 1, 1]); // ln λ_h: (H, 1, 1)
  const positions = tf.range(0, T); // (T)
  const lag = tf.mul(tf.sub(tf.reshape(positions, [T, 1]), tf.reshape(positions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const gamma = tf.mul(tf.exp(tf.mul(logLambda, lag)), ctx.causalMask); // λ_h^{i−j}, 0 for j > i: (H, T, T)
  const fit = tf.matMul(tf.mul(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), gamma), v); // W_i q_i: (B, H, T, d)

  // Without a normaliser the fit's size depends on the decay; RetNet normalises each head (GroupNorm).
  const prediction = tf.mul(fit, tf.rsqrt(tf.add(tf.mean(tf.square(fit), -1, true), 1e-6))); // RMS-normalised over d: (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
