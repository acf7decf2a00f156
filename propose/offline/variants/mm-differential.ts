// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-differential',
  framework: 'matrix_mixer',
  title: 'Difference of two softmax mixers',
  reference: 'arXiv:2410.05258',
  idea: 'M = M¹ − λ_h M² cancels shared weight on irrelevant context, allowing sparser effective mixers.',
  knobs: ['lambdaInit'],
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

  // Difference of two softmax mixers from the halves of each head's queries and keys (Differential
  // Transformer, arXiv:2410.05258): M = M¹ − λ_h M². Mixing weight that both put on irrelevant context
  // cancels, so M can be sparser than any single row-stochastic mixer; λ_h is learned per head.
  const lambdaInit = 0.8;
  const lambda = ctx.param('lambda', [H, 1, 1], { constant: lambdaInit }); // λ_h: (H, 1, 1)
  const half = Math.floor(d / 2);
  const [Q1, Q2] = tf.split(Q, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const [K1, K2] = tf.split(K, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const future = tf.mul(tf.sub(1, ctx.causalMask), -1e9); // (T, T)
  // One causal softmax mixer, masked before its row normalisation.
  const mixer = (Qa: Tensor, Ka: Tensor, width: number) =>
    tf.softmax(tf.add(tf.matMul(Qa, tf.mul(Ka, 1 / Math.sqrt(width)), false, true), future)); // (B, H, T, T)
  const M = tf.sub(mixer(Q1, K1, half), tf.mul(lambda, mixer(Q2, K2, d - half))); // (B, H, T, T)

  // As in the paper, each head's output is RMS-normalised and scaled by (1 − λ_init).
  const raw = tf.matMul(M, V); // M·V: (B, H, T, d)
  const Y = tf.mul(tf.mul(raw, tf.rsqrt(tf.add(tf.mean(tf.square(raw), -1, true), 1e-6))), 1 - lambdaInit); // (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
