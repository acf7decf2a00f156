// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-linear-kernel',
  framework: 'test_time_regression',
  title: 'Linear kernel φ(q)·φ(k), φ = elu + 1',
  reference: 'arXiv:2006.16236',
  idea: 'A d-feature kernel makes the fit a fixed-size recurrent state, trading sharpness for cost linear in T.',
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

  // Kernel γ_ij = φ(q_i)·φ(k_j) with the positive feature map φ = elu + 1 (linear attention,
  // arXiv:2006.16236). The weights factor through d features, so the same fit has a recurrent form
  // with a d × d state; the quadratic form is written here because it is the simplest at short T.
  const phi = (t: Tensor) => tf.add(tf.elu(t), 1); // > 0: (B, H, T, d)
  const gamma = tf.mul(tf.matMul(phi(q), phi(k), false, true), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)

  // Local-constant fit with these weights; 1e-6 guards rows whose weights all underflow.
  const prediction = tf.div(tf.matMul(gamma, v), tf.add(tf.sum(gamma, -1, true), 1e-6)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
