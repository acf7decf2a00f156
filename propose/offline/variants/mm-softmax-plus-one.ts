// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-softmax-plus-one',
  framework: 'matrix_mixer',
  title: 'Sub-stochastic rows (softmax + 1)',
  reference: '"Attention is off by one" (Miller 2023); arXiv:2309.17453',
  idea: 'Rows of M sum to at most 1, as if mixing in a zero value, so heads can abstain without attention sinks.',
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

  // Mixer logits Q Kᵀ/√d, as in the baseline.
  const logits = tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)

  // Rows sum to at most 1: M = mask ∘ exp(logits) / (1 + Σ_j exp(logits)) ("Attention is off by one",
  // 2023) — as if every row also mixed in a zero value vector, so a head can abstain.
  const masked = tf.add(logits, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const shift = tf.maximum(tf.max(masked, -1, true), 0); // ≥ 0, so the implicit e^0 term also stays ≤ 1: (B, H, T, 1)
  const E = tf.exp(tf.sub(masked, shift)); // (B, H, T, T)
  const M = tf.div(E, tf.add(tf.sum(E, -1, true), tf.exp(tf.neg(shift)))); // (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
