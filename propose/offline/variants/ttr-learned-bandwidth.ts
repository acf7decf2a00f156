// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-learned-bandwidth',
  framework: 'test_time_regression',
  title: 'Learned per-head kernel bandwidth',
  reference: 'arXiv:2501.12352 (kernel bandwidth); arXiv:2010.04245',
  idea: 'γ_ij = exp(q·k/(τ_h √d)) with τ_h learned: each head picks how local its regression is.',
  knobs: ['bandwidthInit'],
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

  // Kernel bandwidth: γ_ij = exp(q_i·k_j/(τ_h √d)) with a learned per-head bandwidth τ_h (log-parameterised
  // so it stays positive): a wide kernel averages many values, a narrow one picks out the nearest key.
  const bandwidthInit = 1;
  const logTau = ctx.param('logBandwidth', [H, 1, 1], { constant: Math.log(bandwidthInit) }); // ln τ_h: (H, 1, 1)
  const logGamma = tf.matMul(q, tf.mul(k, tf.mul(tf.exp(tf.neg(logTau)), 1 / Math.sqrt(d))), false, true); // q_i·k_j/(τ_h √d): (B, H, T, T)

  // Only the past enters the fit (log γ = −1e9 for j > i); the per-query max shift cancels in the mean.
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(past, tf.max(past, -1, true))); // γ_ij up to a per-query factor: (B, H, T, T)

  // Local-constant fit: the γ-weighted mean of the values.
  const prediction = tf.div(tf.matMul(gamma, v), tf.sum(gamma, -1, true)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
