// A published coefficient-dynamics variant for the offline catalogue; propose/offline/catalogue.ts
// reads its EVOLVE-BLOCK from this file's text and its metadata from `variant`.
import type { AttentionContext, Tensor, Tf } from '../../../evaluator/attention-context';
import type { VariantMeta } from '../catalogue';

export const variant = {
  id: 'cd-learned-temperature',
  framework: 'coefficient_dynamics',
  title: 'Learned per-head input scale',
  reference: 'arXiv:2010.04245 (learned scale); arXiv:2510.09389 (input scale b)',
  idea: 'b = τ_h/√d with τ_h learned per head: each head tunes its own sharpness, which wider models can use to specialise heads.',
  knobs: ['temperatureInit'],
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

  // Input scale b = τ_h/√d with a learned per-head temperature τ_h (log-parameterised so it stays
  // positive): each head sets how peaked its coefficients are instead of inheriting 1/√d.
  const temperatureInit = 1;
  const logTau = ctx.param('logTau', [H, 1, 1], { constant: Math.log(temperatureInit) }); // ln τ_h: (H, 1, 1)
  const h = tf.mul(k, tf.mul(tf.exp(logTau), 1 / Math.sqrt(d))); // h_ij = τ_h k_j/√d: (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)

  // Readout φ = exp over the causal past, η_i = Σ_{j≤i} exp(·), as in the baseline.
  const s = tf.add(score, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // future gets −1e9: (B, H, T, T)
  const phi = tf.exp(tf.sub(s, tf.max(s, -1, true))); // (B, H, T, T), shifted for stability
  const alpha = tf.div(phi, tf.sum(phi, -1, true)); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)
}
// EVOLVE-BLOCK-END

export { attention };
