// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-forgetting-gate',
  framework: 'coefficient_dynamics',
  title: 'Data-dependent forget-gate transition (Forgetting Transformer)',
  reference: 'arXiv:2503.02130',
  idea: 'Coefficients scaled by Π f_l with f = σ(x w + b): the transition becomes a learned, input-dependent decay, shown to improve softmax attention at several scales.',
  knobs: ['forgetBiasInit'],
} satisfies VariantMeta;

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

  // Data-dependent decay of the coefficients (Forgetting Transformer, arXiv:2503.02130): a forget gate
  // f_l = σ(x_l w_h + b_h) per head, with Σ_{j<l≤i} ln f_l added to the score, so under exp the coefficient
  // of key j at query i carries Π_{j<l≤i} f_l — a scalar transition f_l acting on the coefficient rather
  // than inside φ. A cumulative sum gives every prefix at once; forgetBiasInit starts f near 1.
  const forgetBiasInit = 3;
  const Wf = ctx.param('Wf', [D, H], 'glorot');
  const bf = ctx.param('bf', [H], { constant: forgetBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogF = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wf), bf)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const forget = tf.mul(tf.sub(tf.expandDims(cumLogF, 3), tf.expandDims(cumLogF, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)

  const score = tf.add(tf.matMul(q, h, false, true), forget); // q_iᵀ h_ij: (B, H, T, T), plus the forget-gate decay

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
