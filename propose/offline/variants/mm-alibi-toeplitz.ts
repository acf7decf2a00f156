// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-alibi-toeplitz',
  framework: 'matrix_mixer',
  title: 'Attention ∘ Toeplitz decay (ALiBi)',
  reference: 'arXiv:2108.12409',
  idea: 'M = rownorm(mask ∘ exp(QKᵀ/√d) ∘ e^{−m_h (i−j)}): a fixed Toeplitz factor biases heads to different horizons.',
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
  const [Q, K, V] = tf.split(qkv, 3, 1).map(heads); // X W_Q, X W_K, X W_V: each (B, H, T, d)

  // Toeplitz factor (ALiBi, arXiv:2108.12409): adding −m_h (i − j) to the logits multiplies exp(logits)
  // by the Toeplitz matrix e^{−m_h (i−j)}, a convolution-like bias towards recent tokens; geometric
  // slopes m_h = 2^(−alibiSlopeExponent·h/H) give each head its own horizon.
  const alibiSlopeExponent = 8;
  const alibiSlopes = tf.tensor(Array.from({ length: H }, (_, head) => -Math.pow(2, (-alibiSlopeExponent * (head + 1)) / H)), [H, 1, 1]); // −m_h: (H, 1, 1)
  const alibiPositions = tf.range(0, T); // (T)
  const alibiLag = tf.mul(tf.sub(tf.reshape(alibiPositions, [T, 1]), tf.reshape(alibiPositions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const recency = tf.mul(alibiSlopes, alibiLag); // −m_h (i − j): (H, T, T)

  // Mixer logits Q Kᵀ/√d: dense and data-dependent.
  const logits = tf.add(tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true), recency); // (B, H, T, T), plus the ALiBi recency prior

  // M = causal mask ∘ row-normalise(exp(logits)). The mask comes first: entries above the
  // diagonal get −1e9, so exp makes them exactly 0 and they never reach the row sums. The
  // row-max shift keeps exponents ≤ 0 and cancels in the normalisation.
  const masked = tf.add(logits, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const E = tf.exp(tf.sub(masked, tf.max(masked, -1, true))); // (B, H, T, T)
  const M = tf.div(E, tf.sum(E, -1, true)); // lower-triangular, rows sum to 1: (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
