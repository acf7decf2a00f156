// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-rbf-kernel',
  framework: 'test_time_regression',
  title: 'RBF kernel via QK-norm with learned gain',
  reference: 'arXiv:2010.04245',
  idea: 'γ_ij = exp(g_h q̂·k̂) is a Gaussian kernel of learned bandwidth; bounded logits avoid the logit growth that destabilises larger models.',
  knobs: ['gainInit'],
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

  // RBF kernel (QK-norm, arXiv:2010.04245): with unit-length queries and keys,
  // exp(g_h q̂·k̂) = e^{g_h}·exp(−g_h ‖q̂ − k̂‖²/2), a Gaussian kernel of bandwidth 1/√g_h. The gain g_h is
  // learned per head, and the bounded logits keep heads from saturating as the model grows.
  const gainInit = 8;
  const gain = ctx.param('kernelGain', [H, 1, 1], { constant: gainInit }); // g_h: (H, 1, 1)
  const unit = (t: Tensor) => tf.mul(t, tf.rsqrt(tf.add(tf.sum(tf.square(t), -1, true), 1e-6))); // t/‖t‖ over d: (B, H, T, d)
  const logGamma = tf.mul(tf.matMul(unit(q), unit(k), false, true), gain); // log γ_ij = g_h q̂_i·k̂_j: (B, H, T, T)

  // Only the past enters the fit (log γ = −1e9 for j > i); the per-query max shift cancels in the mean.
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(past, tf.max(past, -1, true))); // γ_ij up to a per-query factor: (B, H, T, T)

  // Local-constant fit: the γ-weighted mean of the values.
  const prediction = tf.div(tf.matMul(gamma, v), tf.sum(gamma, -1, true)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
