// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-power-kernel',
  framework: 'test_time_regression',
  title: 'Polynomial (power) kernel, p = 2',
  reference: 'arXiv:2507.04239',
  idea: 'γ_ij = (q·k/√d)² gives non-negative weights without exp and a state size that can grow independently of the parameters.',
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

  // Polynomial kernel γ_ij = (q_i·k_j/√d)^p with p = 2 (power attention, arXiv:2507.04239): non-negative
  // weights without exp, and the kernel's feature space (degree-p products of key coordinates) sets the
  // size of the recurrent state, so state size can grow apart from the parameter count.
  const dot = tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true); // q_i·k_j/√d: (B, H, T, T)
  const gamma = tf.mul(tf.square(dot), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)

  // Local-constant fit with these weights; 1e-6 guards rows whose weights are all ≈ 0.
  const prediction = tf.div(tf.matMul(gamma, v), tf.add(tf.sum(gamma, -1, true), 1e-6)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
