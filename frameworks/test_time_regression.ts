/**
 * Framework: TEST-TIME REGRESSION (Wang, Shi, Fox 2025, arXiv:2501.12352).
 *
 * Attention as a regression solved afresh at every position. Causal position i fits a function
 * m to the key → value pairs it has seen so far and reads the fit out at its own query:
 *     m_i = argmin_m ½ Σ_{j≤i} γ_ij ‖v_j − m(k_j)‖²,     o_i = m_i(q_i).
 * Three choices define a layer: the weights γ_ij (which past pairs matter, and how much), the
 * function class of m (a constant, a linear map, …) and the optimiser (exact solve, a few
 * gradient steps). Softmax attention is the local-constant (Nadaraya–Watson) regressor: m is a
 * constant, γ_ij = exp(q_i·k_j/√d) is a kernel between query and key, and the exact solution is
 * the γ-weighted mean of the values:
 *     o_i = Σ_{j≤i} γ_ij v_j / Σ_{j≤i} γ_ij.
 * Linear attention is linear regression m(k) = W k with the key covariance replaced by the
 * identity; recursive least squares is its exact (ridge) solution; DeltaNet takes one online
 * gradient step per token; gated variants multiply γ by a recency decay.
 *
 * What may evolve: the kernel and its bandwidth (QK-norm makes exp(q·k/τ) an RBF kernel;
 * polynomial and linear kernels), a ridge term in the normaliser, recency weights in γ,
 * local-linear corrections, a richer m, solver steps. Whatever evolves must stay causal
 * (γ_ij = 0 for j > i), keep every batch row independent, stay finite, and return (B, T, D).
 *
 * The block sees only `tf` (the tfjs API) and `ctx` (dModel, nHeads, headDim, seqLen,
 * causalMask (T, T) with 1 where j ≤ i, and param(name, shape, init) for trainable weights).
 * It defines `function attention(tf, ctx, x)`: x is the LayerNorm'd residual stream (B, T, D);
 * the result (B, T, D) goes through a fixed output projection, dropout and the residual add.
 */
import type { AttentionContext, Tensor, Tf } from '../evaluator/attention-context';

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
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
