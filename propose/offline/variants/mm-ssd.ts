// A published matrix-mixer variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'mm-ssd',
  framework: 'matrix_mixer',
  title: 'Semiseparable mixer (Mamba-2 SSD)',
  reference: 'arXiv:2405.21060',
  idea: 'M = L ∘ Q Kᵀ with a data-dependent 1-semiseparable L: selective forgetting with a recurrent state.',
  knobs: ['decayBiasInit'],
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

  // Semiseparable class, Mamba-2's state-space duality (arXiv:2405.21060): M = L ∘ (C Bᵀ) with C = Q,
  // B = K and L_ij = Π_{j<l≤i} a_l, a_l = σ(x_l w_h + b_h) per head. L is 1-semiseparable, so M·V is a
  // recurrence with a d × d state; decayBiasInit starts a near 1.
  const decayBiasInit = 3;
  const Wa = ctx.param('Wa', [D, H], 'glorot');
  const ba = ctx.param('ba', [H], { constant: decayBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogA = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wa), ba)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const logL = tf.mul(tf.sub(tf.expandDims(cumLogA, 3), tf.expandDims(cumLogA, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)
  const L = tf.mul(tf.exp(logL), ctx.causalMask); // L_ij, 0 for j > i: (B, H, T, T)
  const M = tf.mul(L, tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true)); // (B, H, T, T)

  // Rows of M are not normalised; Mamba-2 normalises each head's output instead (RMS over d).
  const raw = tf.matMul(M, V); // M·V: (B, H, T, d)
  const Y = tf.mul(raw, tf.rsqrt(tf.add(tf.mean(tf.square(raw), -1, true), 1e-6))); // RMS-normalised over d: (B, H, T, d)
  return tf.reshape(tf.transpose(Y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
