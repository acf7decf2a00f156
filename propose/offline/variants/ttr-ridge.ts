// A published test-time-regression variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'ttr-ridge',
  framework: 'test_time_regression',
  title: 'Ridge-regularised local-constant fit',
  reference: 'arXiv:2501.12352; "Attention is off by one" (2023)',
  idea: 'Σγv/(λ_h + Σγ) shrinks the fit towards 0 when no key matches, letting heads abstain instead of forming attention sinks.',
  knobs: ['ridgeInit'],
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

  // Kernel weights as in the baseline.
  const logGamma = tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)

  // Ridge term: argmin_m ½ Σ_j γ_ij ‖v_j − m‖² + ½ λ_h ‖m‖² = Σ_j γ_ij v_j / (λ_h + Σ_j γ_ij). The prior
  // pulls the fit to 0 when no key matches, so a head can abstain; λ_h = 1 is "softmax + 1"
  // (arXiv:2309.17453 on attention sinks), here learned per head.
  const ridgeInit = 1;
  const logRidge = ctx.param('logRidge', [H, 1, 1], { constant: Math.log(ridgeInit) }); // ln λ_h: (H, 1, 1)
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  // Shift each row by max(row max, ln λ_h) so every exponent, the ridge's included, is ≤ 0. ln λ_h is
  // broadcast explicitly: tfjs's maximum does not reduce its gradient back to a broadcast operand.
  const shift = tf.maximum(tf.max(past, -1, true), tf.broadcastTo(logRidge, [B, H, T, 1])); // (B, H, T, 1)
  const gamma = tf.exp(tf.sub(past, shift)); // (B, H, T, T)
  const ridge = tf.exp(tf.sub(logRidge, shift)); // λ_h e^{−shift}: (B, H, T, 1)
  const prediction = tf.div(tf.matMul(gamma, v), tf.add(tf.sum(gamma, -1, true), ridge)); // m_i(q_i): (B, H, T, d)
  return tf.reshape(tf.transpose(prediction, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
