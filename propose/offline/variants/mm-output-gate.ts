// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-output-gate',
  framework: 'matrix_mixer',
  title: 'Sigmoid output gate',
  reference: 'arXiv:2505.06708',
  idea: '(M·V) ⊙ σ(X W_g) adds a multiplicative non-linearity after mixing and removes attention sinks.',
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

  // Output gate σ(x W_g), one gate per channel (arXiv:2505.06708): a position can switch off what its
  // heads read, so no head has to park weight on a sink token when nothing in the past is relevant.
  const Wg = ctx.param('Wg', [D, D], 'glorot');
  const gate = tf.sigmoid(tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), Wg), [B, T, D])); // (B, T, D)
  return tf.mul(gate, tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D])); // gated (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
