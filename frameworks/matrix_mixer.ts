/**
 * Framework: MATRIX MIXER (Hwang, Lahoti, Dao, Gu 2024, "Hydra", arXiv:2407.09941).
 *
 * A sequence mixer as one T × T matrix per head that mixes the values along time:
 *     Y = M · V,     V = X W_V,     row i of Y is Σ_j M_ij v_j.
 * Layers differ in the structure class of M and in how M depends on the input. Softmax
 * attention is
 *     M = causal mask ∘ row-normalise(exp(Q Kᵀ/√d)):
 * dense and data-dependent (exp destroys the rank-d structure of Q Kᵀ). Other classes:
 * low-rank M = mask ∘ φ(Q) φ(K)ᵀ (linear attention, cost T·d²); Toeplitz M_ij = c(i − j), a
 * convolution (long convolutions, Hyena; ALiBi is attention ∘ a Toeplitz factor); semiseparable
 * M = L ∘ C Bᵀ with L_ij = Π_{j<l≤i} a_l (Mamba-2 SSD, RetNet with constant a), whose
 * sub-diagonal blocks have low rank so M·V has a recurrent form; Vandermonde, Cauchy and
 * quasiseparable mixers.
 *
 * What may evolve: the structure class of M, fixed versus data-dependent M, products such as
 * attention ∘ Toeplitz, and the normalisation of M (rows summing to 1, to at most 1, or free).
 * Causal use needs M lower-triangular (M_ij = 0 for j > i) — apply the mask before any row
 * normalisation, or the future leaks in through the denominator. Whatever evolves must also
 * keep every batch row independent, stay finite, and return (B, T, D).
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
  const [Q, K, V] = tf.split(qkv, 3, 1).map(heads); // X W_Q, X W_K, X W_V: each (B, H, T, d)

  // Mixer logits Q Kᵀ/√d: dense and data-dependent.
  const logits = tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)

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
