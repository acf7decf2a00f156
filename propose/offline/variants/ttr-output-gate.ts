// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-output-gate',
  framework: 'test_time_regression',
  title: 'Sigmoid output gate',
  reference: 'arXiv:2505.06708',
  idea: 'm_i(q_i) ⊙ σ(x_i W_g) lets a position ignore a poor fit instead of forcing it into the residual stream.',
  knobs: [],
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

  // Kernel weights on the log scale: log γ_ij = q_i·k_j/√d for every query–key pair.
  const logGamma = tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)

  // Only the past enters the fit: pairs with j > i get log γ = −1e9, i.e. weight exactly 0 after exp.
  // A factor shared by one query's weights cancels in the weighted mean, so each row is shifted
  // by its max before exp to keep every exponent ≤ 0.
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(past, tf.max(past, -1, true))); // γ_ij up to a per-query factor: (B, H, T, T)

  // Local-constant fit: m_i = Σ_j γ_ij v_j / Σ_j γ_ij, the same constant whatever q_i is.
  const prediction = tf.div(tf.matMul(gamma, v), tf.sum(gamma, -1, true)); // m_i(q_i): (B, H, T, d)

  // Output gate σ(x W_g), one gate per channel (arXiv:2505.06708): a position can switch off what its
  // heads read, so no head has to park weight on a sink token when nothing in the past is relevant.
  const Wg = ctx.param('Wg', [D, D], 'glorot');
  const gate = tf.sigmoid(tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), Wg), [B, T, D])); // (B, T, D)
  return tf.mul(gate, tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D])); // gated (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
