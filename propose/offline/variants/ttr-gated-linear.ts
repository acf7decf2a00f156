// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-gated-linear',
  framework: 'test_time_regression',
  title: 'Linear regression with gated recency (GLA / Mamba-2 scalar gate)',
  reference: 'arXiv:2312.06635; arXiv:2405.21060',
  idea: 'Data-dependent decays γ_ij = Π a_l let each token clear the linear fit, the key ingredient of recurrent models that close the gap to attention.',
  knobs: ['decayBiasInit'],
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

  // Linear regression as in retention, with data-dependent recency weights γ_ij = Π_{j<l≤i} a_l,
  // a_l = σ(x_l w_h + b_h) per head (gated linear attention, arXiv:2312.06635; Mamba-2's scalar gate,
  // arXiv:2405.21060): each token decides how much of the old fit to forget. decayBiasInit starts a near 1.
  const decayBiasInit = 3;
  const Wa = ctx.param('Wa', [D, H], 'glorot');
  const ba = ctx.param('ba', [H], { constant: decayBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogA = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wa), ba)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const logDecay = tf.mul(tf.sub(tf.expandDims(cumLogA, 3), tf.expandDims(cumLogA, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)
  const gamma = tf.mul(tf.exp(logDecay), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)
  const fit = tf.matMul(tf.mul(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), gamma), v); // W_i q_i: (B, H, T, d)

  // Without a normaliser the fit's size depends on the gates; normalise each head as GLA does.
  const prediction = tf.mul(fit, tf.rsqrt(tf.add(tf.mean(tf.square(fit), -1, true), 1e-6))); // RMS-normalised over d: (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
