// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-alibi-recency',
  framework: 'test_time_regression',
  title: 'Exponential recency weights (ALiBi)',
  reference: 'arXiv:2108.12409',
  idea: 'γ_ij ∝ kernel × e^{−m_h (i−j)}: a per-head window on the regression data that biases heads to different horizons.',
  knobs: ['alibiSlopeExponent'],
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

  // Recency weights (ALiBi, arXiv:2108.12409): log γ_ij drops by m_h (i − j), so older pairs count
  // less in the fit — the kernel times an exponential window; geometric slopes
  // m_h = 2^(−alibiSlopeExponent·h/H) give each head its own window.
  const alibiSlopeExponent = 8;
  const alibiSlopes = tf.tensor(Array.from({ length: H }, (_, head) => -Math.pow(2, (-alibiSlopeExponent * (head + 1)) / H)), [H, 1, 1]); // −m_h: (H, 1, 1)
  const alibiPositions = tf.range(0, T); // (T)
  const alibiLag = tf.mul(tf.sub(tf.reshape(alibiPositions, [T, 1]), tf.reshape(alibiPositions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const recency = tf.mul(alibiSlopes, alibiLag); // −m_h (i − j): (H, T, T)

  // Kernel weights on the log scale: log γ_ij = q_i·k_j/√d for every query–key pair.
  const logGamma = tf.add(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), recency); // (B, H, T, T), plus the ALiBi recency prior

  // Only the past enters the fit: pairs with j > i get log γ = −1e9, i.e. weight exactly 0 after exp.
  // A factor shared by one query's weights cancels in the weighted mean, so each row is shifted
  // by its max before exp to keep every exponent ≤ 0.
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(past, tf.max(past, -1, true))); // γ_ij up to a per-query factor: (B, H, T, T)

  // Local-constant fit: m_i = Σ_j γ_ij v_j / Σ_j γ_ij, the same constant whatever q_i is.
  const prediction = tf.div(tf.matMul(gamma, v), tf.sum(gamma, -1, true)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
