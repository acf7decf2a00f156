// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-alibi',
  framework: 'coefficient_dynamics',
  title: 'Fixed per-head decay of the score (ALiBi)',
  reference: 'arXiv:2108.12409',
  idea: 'score − m_h (i − j) with geometric slopes: a scalar transition that biases heads to different horizons and extrapolates to longer contexts.',
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
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads); // each (B, H, T, d)

  // Input scale b_j = 1/√d and no dynamics (A_i = I): h_ij = k_j / √d for every i ≥ j.
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)

  // Fixed decay of the coefficients (ALiBi, arXiv:2108.12409): the score of key j at query i drops by
  // m_h (i − j), so under exp the coefficient carries e^{−m_h (i−j)} — a scalar transition γ_h = e^{−m_h}
  // acting on the coefficient rather than inside φ. Geometric slopes m_h = 2^(−alibiSlopeExponent·h/H)
  // give each head its own horizon.
  const alibiSlopeExponent = 8;
  const alibiSlopes = tf.tensor(Array.from({ length: H }, (_, head) => -Math.pow(2, (-alibiSlopeExponent * (head + 1)) / H)), [H, 1, 1]); // −m_h: (H, 1, 1)
  const alibiPositions = tf.range(0, T); // (T)
  const alibiLag = tf.mul(tf.sub(tf.reshape(alibiPositions, [T, 1]), tf.reshape(alibiPositions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const recency = tf.mul(alibiSlopes, alibiLag); // −m_h (i − j): (H, T, T)

  const score = tf.add(tf.matMul(q, h, false, true), recency); // q_iᵀ h_ij: (B, H, T, T), plus the ALiBi recency prior

  // Readout φ = exp over the causal past only (future positions get −1e9 before exp).
  const future = tf.mul(tf.sub(1, ctx.causalMask), -1e9); // (T, T)
  const s = tf.add(score, future); // (B, H, T, T)
  const phi = tf.exp(tf.sub(s, tf.max(s, -1, true))); // (B, H, T, T), shifted for stability
  const eta = tf.sum(phi, -1, true); // η_i: (B, H, T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
