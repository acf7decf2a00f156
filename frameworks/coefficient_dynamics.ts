/**
 * Framework: COEFFICIENT DYNAMICS (Sieber, Orvieto, Zeilinger, Amo Alonso 2025, arXiv:2510.09389).
 *
 * Attention as coefficients that evolve in time. Causal position i (query) mixes the values
 * of positions j ≤ i:
 *     y_i = Σ_{j≤i} α_ij v_j,     α_ij = φ(q_iᵀ h_ij) / η_i
 * where h_ij is the key k_j carried forward by linear dynamics started at j:
 *     h_jj = b_j k_j,   h_ij = A_i h_{i−1,j}.
 * Softmax attention is A_i = I (no dynamics), b_j = 1/√d, φ = exp and η_i = Σ_{j≤i} exp(·).
 *
 * What may evolve: the readout φ (sigmoid, ReLU², stick-breaking…), the normaliser η (1 + Σ,
 * 1/i, none), the input scale b (learned temperature, log-length scaling), the transition A_i
 * (γI decay, data-dependent scalar gates, diagonal, I − β k kᵀ), output gates, extra heads of
 * coefficients. Whatever evolves must stay causal (α_ij = 0 for j > i), keep every batch row
 * independent, stay finite, and return (B, T, D).
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
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads); // each (B, H, T, d)

  // Input scale b_j = 1/√d and no dynamics (A_i = I): h_ij = k_j / √d for every i ≥ j.
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)

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
