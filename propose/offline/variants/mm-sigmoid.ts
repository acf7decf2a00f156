// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-sigmoid',
  framework: 'matrix_mixer',
  title: 'Unnormalised sigmoid mixer',
  reference: 'arXiv:2409.04431',
  idea: 'M = mask ∘ σ(logits + β_h), β_h ≈ −ln T: rows free of the sum-to-one constraint, so entries do not compete.',
  knobs: ['sigmoidBiasScale'],
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

  // Unnormalised mixer M = causal mask ∘ σ(logits + β_h) (sigmoid attention, arXiv:2409.04431): rows no
  // longer sum to 1, so entries do not compete. β_h starts at −sigmoidBiasScale·ln T, which puts the
  // longest row's sum near 1 at the start.
  const sigmoidBiasScale = 1;
  const beta = ctx.param('sigmoidBias', [H, 1, 1], { constant: -sigmoidBiasScale * Math.log(T) }); // β_h: (H, 1, 1)
  const M = tf.mul(tf.sigmoid(tf.add(logits, beta)), ctx.causalMask); // lower-triangular: (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
