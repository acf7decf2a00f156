// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-forgetting-recency',
  framework: 'test_time_regression',
  title: 'Gated recency weights (Forgetting Transformer)',
  reference: 'arXiv:2503.02130',
  idea: 'γ_ij ∝ kernel × Π f_l with learned input-dependent forget gates: the regression discounts stale data where the input says so.',
  knobs: ['forgetBiasInit'],
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

  // Data-dependent recency weights (Forgetting Transformer, arXiv:2503.02130): γ_ij gains the factor
  // Π_{j<l≤i} f_l with a forget gate f_l = σ(x_l w_h + b_h) per head, so each token decides how much older
  // pairs still count in the fit. Σ ln f_l is added to log γ; forgetBiasInit starts f near 1.
  const forgetBiasInit = 3;
  const Wf = ctx.param('Wf', [D, H], 'glorot');
  const bf = ctx.param('bf', [H], { constant: forgetBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogF = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wf), bf)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const forget = tf.mul(tf.sub(tf.expandDims(cumLogF, 3), tf.expandDims(cumLogF, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)

  // Kernel weights on the log scale: log γ_ij = q_i·k_j/√d for every query–key pair.
  const logGamma = tf.add(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), forget); // (B, H, T, T), plus the forget-gate decay

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
