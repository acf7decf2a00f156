// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-forgetting-semiseparable',
  framework: 'matrix_mixer',
  title: 'Attention ∘ data-dependent semiseparable decay (Forgetting Transformer)',
  reference: 'arXiv:2503.02130',
  idea: 'M = rownorm(mask ∘ exp(QKᵀ/√d) ∘ L) with L_ij = Π f_l learned from the input: softmax attention with selective forgetting.',
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
  const [Q, K, V] = tf.split(qkv, 3, 1).map(heads); // X W_Q, X W_K, X W_V: each (B, H, T, d)

  // Semiseparable factor (Forgetting Transformer, arXiv:2503.02130; Mamba-2's L, arXiv:2405.21060):
  // M ∝ exp(logits) ∘ L with L_ij = Π_{j<l≤i} f_l, f_l = σ(x_l w_h + b_h) per head — a data-dependent
  // 1-semiseparable matrix, added to the logits as Σ ln f_l; forgetBiasInit starts f near 1.
  const forgetBiasInit = 3;
  const Wf = ctx.param('Wf', [D, H], 'glorot');
  const bf = ctx.param('bf', [H], { constant: forgetBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogF = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wf), bf)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const forget = tf.mul(tf.sub(tf.expandDims(cumLogF, 3), tf.expandDims(cumLogF, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)

  // Mixer logits Q Kᵀ/√d: dense and data-dependent.
  const logits = tf.add(tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true), forget); // (B, H, T, T), plus the forget-gate decay

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
