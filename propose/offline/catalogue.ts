// Published attention variants as complete EVOLVE-BLOCKs, each in its framework's notation and
// derived from that framework's baseline; the offline mutator draws from it and prompts quote it.
import { extractBlock, frameworkTemplate, FRAMEWORKS, type Framework } from '../../core/program';

/**
 * A numeric hyper-parameter declared in a block as `const <name> = <number>;`. Perturbing it
 * stays inside [min, max] (both > 0), where every value gives a causal, finite block.
 */
export interface Knob {
  name: string;
  min: number;
  max: number;
  integer?: boolean;
}

export interface Variant {
  id: string;
  framework: Framework;
  title: string;
  /** arXiv id or paper. */
  reference: string;
  /** One sentence: what changes and why it might scale better. */
  idea: string;
  /** A complete EVOLVE-BLOCK body defining `function attention(tf, ctx, x)`. */
  block: string;
  /** The block's perturbable constants (absent: none). */
  knobs?: readonly Knob[];
}

/** Every knob any catalogue block declares; one spec per name, shared across frameworks. */
export const KNOBS: Readonly<Record<string, Knob>> = Object.freeze(
  Object.fromEntries(
    [
      { name: 'sigmoidBiasScale', min: 0.25, max: 2 },
      { name: 'temperatureInit', min: 0.25, max: 4 },
      { name: 'lengthScaleInit', min: 0.1, max: 2 },
      { name: 'lambdaInit', min: 0.1, max: 0.9 },
      { name: 'alibiSlopeExponent', min: 2, max: 16 },
      { name: 'forgetBiasInit', min: 0.5, max: 8 },
      { name: 'gainInit', min: 2, max: 32 },
      { name: 'bandwidthInit', min: 0.25, max: 4 },
      { name: 'ridgeInit', min: 0.05, max: 20 },
      { name: 'retentionExponent', min: 2, max: 10 },
      { name: 'decayBiasInit', min: 0.5, max: 8 },
      { name: 'filterModes', min: 2, max: 8, integer: true },
    ].map((k: Knob) => [k.name, k]),
  ),
);

function knobs(...names: string[]): Knob[] {
  return names.map((n) => {
    const k = KNOBS[n];
    if (!k) throw new Error(`catalogue: unknown knob ${n}`);
    return k;
  });
}

// ---------------------------------------------------------------------------------------------
// Shared block text. Every variant starts with its framework's own preamble (copied from the
// template up to the q/k/v split) and ends with the same merge of heads, so diffs against the
// baseline show only the idea.

export function baselineBlock(framework: Framework): string {
  return extractBlock(frameworkTemplate(framework), `frameworks/${framework}.ts`);
}

function preamble(framework: Framework): string {
  const base = baselineBlock(framework);
  const split = base.indexOf('.map(heads);');
  if (split < 0) throw new Error(`catalogue: the ${framework} baseline no longer splits q/k/v with .map(heads)`);
  return base.slice(0, base.indexOf('\n', split) + 1);
}

function tail(out: string): string {
  return `  return tf.reshape(tf.transpose(${out}, [0, 2, 1, 3]), [B, T, D]); // (B, H, T, d) → (B, T, D)\n}\n`;
}

function assemble(framework: Framework, body: string, out: string): string {
  return preamble(framework) + body + tail(out);
}

/** The variable that holds pre-readout scores in each framework: where a prior is added. */
const SCORE_VAR: Readonly<Record<Framework, string>> = {
  coefficient_dynamics: 'score',
  test_time_regression: 'logGamma',
  matrix_mixer: 'logits',
};

const CD_SCORE = `
  // Input scale b_j = 1/√d and no dynamics (A_i = I), as in the baseline.
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)
`;

const CD_SOFTMAX_READOUT = `
  // Readout φ = exp over the causal past, η_i = Σ_{j≤i} exp(·), as in the baseline.
  const s = tf.add(score, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // future gets −1e9: (B, H, T, T)
  const phi = tf.exp(tf.sub(s, tf.max(s, -1, true))); // (B, H, T, T), shifted for stability
  const alpha = tf.div(phi, tf.sum(phi, -1, true)); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
`;

const TTR_NW_READOUT = `
  // Only the past enters the fit (log γ = −1e9 for j > i); the per-query max shift cancels in the mean.
  const past = tf.add(logGamma, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(past, tf.max(past, -1, true))); // γ_ij up to a per-query factor: (B, H, T, T)

  // Local-constant fit: the γ-weighted mean of the values.
  const prediction = tf.div(tf.matMul(gamma, v), tf.sum(gamma, -1, true)); // m_i(q_i): (B, H, T, d)
`;

/** A lag matrix i − j on the past and 0 on the future, under the given variable name. */
function lagLines(positions: string, lag: string): string {
  return `  const ${positions} = tf.range(0, T); // (T)
  const ${lag} = tf.mul(tf.sub(tf.reshape(${positions}, [T, 1]), tf.reshape(${positions}, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
`;
}

/** Learned data-dependent log decays Σ_{j<l≤i} ln σ(x_l w_h + b_h), masked to the past. */
function gateDecayLines(W: string, b: string, biasKnob: string, cum: string, out: string): string {
  return `  const ${W} = ctx.param('${W}', [D, H], 'glorot');
  const ${b} = ctx.param('${b}', [H], { constant: ${biasKnob} });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const ${cum} = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), ${W}), ${b})))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const ${out} = tf.mul(tf.sub(tf.expandDims(${cum}, 3), tf.expandDims(${cum}, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)
`;
}

/** Decays λ_h = 1 − 2^{−(retentionExponent + h)}, one per head, computed on the host. */
const RETENTION_DECAY = `  const retentionExponent = 5;
  const logLambda = tf.tensor(Array.from({ length: H }, (_, head) => Math.log(1 - Math.pow(2, -(retentionExponent + head)))), [H, 1, 1]); // ln λ_h: (H, 1, 1)
`;

const RMS_NORM = (name: string, raw: string) =>
  `  const ${name} = tf.mul(${raw}, tf.rsqrt(tf.add(tf.mean(tf.square(${raw}), -1, true), 1e-6))); // RMS-normalised over d: (B, H, T, d)
`;

// ---------------------------------------------------------------------------------------------
// Modifiers: pieces that compose mechanically with other variants. A score prior is added to the
// framework's score variable before the readout; the output gate wraps the final merge of heads.

export interface Modifier {
  /** The catalogue variant this modifier produces when applied to the baseline. */
  id: string;
  kind: 'score-prior' | 'output-gate';
  knobs: readonly Knob[];
  /** The block with this modifier, or null where it does not apply. */
  apply(block: string): string | null;
}

const PRIOR_MARKERS = ['alibiSlopeExponent', "ctx.param('Wf'"];
const RETURN_RE = /^( *)return tf\.reshape\(tf\.transpose\((\w+), \[0, 2, 1, 3\]\), \[B, T, D\]\);.*$/m;

/** Where to insert lines before the line at `index`: above any comment lines that lead into it. */
function insertionPoint(block: string, index: number): number {
  let at = index;
  while (at > 0) {
    const prevStart = block.lastIndexOf('\n', at - 2) + 1;
    if (!block.slice(prevStart, at).trimStart().startsWith('//')) break;
    at = prevStart;
  }
  return at;
}

function scorePrior(framework: Framework, lines: string, name: string, label: string): (block: string) => string | null {
  const re = new RegExp(`^( *)const ${SCORE_VAR[framework]} = (.*?);( *//.*)?$`, 'm');
  return (block) => {
    if (PRIOR_MARKERS.some((m) => block.includes(m))) return null;
    const m = re.exec(block);
    if (!m) return null;
    const at = insertionPoint(block, m.index);
    const line = `${m[1]}const ${SCORE_VAR[framework]} = tf.add(${m[2]}, ${name});${m[3] ? `${m[3]}, plus the ${label}` : ''}`;
    const gap = block.slice(0, at).endsWith('\n\n') ? '' : '\n';
    return block.slice(0, at) + gap + lines + '\n' + block.slice(at, m.index) + line + block.slice(m.index + m[0].length);
  };
}

const ALIBI_COMMENT: Readonly<Record<Framework, string>> = {
  coefficient_dynamics: `  // Fixed decay of the coefficients (ALiBi, arXiv:2108.12409): the score of key j at query i drops by
  // m_h (i − j), so under exp the coefficient carries e^{−m_h (i−j)} — a scalar transition γ_h = e^{−m_h}
  // acting on the coefficient rather than inside φ. Geometric slopes m_h = 2^(−alibiSlopeExponent·h/H)
  // give each head its own horizon.
`,
  test_time_regression: `  // Recency weights (ALiBi, arXiv:2108.12409): log γ_ij drops by m_h (i − j), so older pairs count
  // less in the fit — the kernel times an exponential window; geometric slopes
  // m_h = 2^(−alibiSlopeExponent·h/H) give each head its own window.
`,
  matrix_mixer: `  // Toeplitz factor (ALiBi, arXiv:2108.12409): adding −m_h (i − j) to the logits multiplies exp(logits)
  // by the Toeplitz matrix e^{−m_h (i−j)}, a convolution-like bias towards recent tokens; geometric
  // slopes m_h = 2^(−alibiSlopeExponent·h/H) give each head its own horizon.
`,
};

function alibiLines(framework: Framework): string {
  return `${ALIBI_COMMENT[framework]}  const alibiSlopeExponent = 8;
  const alibiSlopes = tf.tensor(Array.from({ length: H }, (_, head) => -Math.pow(2, (-alibiSlopeExponent * (head + 1)) / H)), [H, 1, 1]); // −m_h: (H, 1, 1)
${lagLines('alibiPositions', 'alibiLag')}  const recency = tf.mul(alibiSlopes, alibiLag); // −m_h (i − j): (H, T, T)
`;
}

const FORGET_COMMENT: Readonly<Record<Framework, string>> = {
  coefficient_dynamics: `  // Data-dependent decay of the coefficients (Forgetting Transformer, arXiv:2503.02130): a forget gate
  // f_l = σ(x_l w_h + b_h) per head, with Σ_{j<l≤i} ln f_l added to the score, so under exp the coefficient
  // of key j at query i carries Π_{j<l≤i} f_l — a scalar transition f_l acting on the coefficient rather
  // than inside φ. A cumulative sum gives every prefix at once; forgetBiasInit starts f near 1.
`,
  test_time_regression: `  // Data-dependent recency weights (Forgetting Transformer, arXiv:2503.02130): γ_ij gains the factor
  // Π_{j<l≤i} f_l with a forget gate f_l = σ(x_l w_h + b_h) per head, so each token decides how much older
  // pairs still count in the fit. Σ ln f_l is added to log γ; forgetBiasInit starts f near 1.
`,
  matrix_mixer: `  // Semiseparable factor (Forgetting Transformer, arXiv:2503.02130; Mamba-2's L, arXiv:2405.21060):
  // M ∝ exp(logits) ∘ L with L_ij = Π_{j<l≤i} f_l, f_l = σ(x_l w_h + b_h) per head — a data-dependent
  // 1-semiseparable matrix, added to the logits as Σ ln f_l; forgetBiasInit starts f near 1.
`,
};

function forgetLines(framework: Framework): string {
  return `${FORGET_COMMENT[framework]}  const forgetBiasInit = 3;
${gateDecayLines('Wf', 'bf', 'forgetBiasInit', 'cumLogF', 'forget')}`;
}

function outputGate(block: string): string | null {
  if (block.includes("ctx.param('Wg'")) return null;
  const m = RETURN_RE.exec(block);
  if (!m) return null;
  const ind = m[1];
  const gated = `\n${ind}// Output gate σ(x W_g), one gate per channel (arXiv:2505.06708): a position can switch off what its
${ind}// heads read, so no head has to park weight on a sink token when nothing in the past is relevant.
${ind}const Wg = ctx.param('Wg', [D, D], 'glorot');
${ind}const gate = tf.sigmoid(tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), Wg), [B, T, D])); // (B, T, D)
${ind}return tf.mul(gate, tf.reshape(tf.transpose(${m[2]}, [0, 2, 1, 3]), [B, T, D])); // gated (B, H, T, d) → (B, T, D)`;
  return block.slice(0, m.index) + gated + block.slice(m.index + m[0].length);
}

const MODIFIER_IDS: Readonly<Record<Framework, { alibi: string; forget: string; gate: string }>> = {
  coefficient_dynamics: { alibi: 'cd-alibi', forget: 'cd-forgetting-gate', gate: 'cd-output-gate' },
  test_time_regression: { alibi: 'ttr-alibi-recency', forget: 'ttr-forgetting-recency', gate: 'ttr-output-gate' },
  matrix_mixer: { alibi: 'mm-alibi-toeplitz', forget: 'mm-forgetting-semiseparable', gate: 'mm-output-gate' },
};

export function modifiersFor(framework: Framework): Modifier[] {
  const ids = MODIFIER_IDS[framework];
  return [
    { id: ids.alibi, kind: 'score-prior', knobs: knobs('alibiSlopeExponent'), apply: scorePrior(framework, alibiLines(framework), 'recency', 'ALiBi recency prior') },
    { id: ids.forget, kind: 'score-prior', knobs: knobs('forgetBiasInit'), apply: scorePrior(framework, forgetLines(framework), 'forget', 'forget-gate decay') },
    { id: ids.gate, kind: 'output-gate', knobs: [], apply: outputGate },
  ];
}

// ---------------------------------------------------------------------------------------------
// Coefficient dynamics: y_i = Σ_{j≤i} α_ij v_j, α_ij = φ(q_iᵀ h_ij)/η_i.

const CD_SIGMOID = `${CD_SCORE}
  // Readout φ = σ(· + β_h) with no normaliser (η_i = 1): every coefficient is its own gate, so keys do
  // not compete for a fixed budget of weight. β_h starts at −sigmoidBiasScale·ln T, which puts the
  // longest row's total weight near 1 at the start.
  const sigmoidBiasScale = 1;
  const beta = ctx.param('sigmoidBias', [H, 1, 1], { constant: -sigmoidBiasScale * Math.log(T) }); // β_h: (H, 1, 1)
  const alpha = tf.mul(tf.sigmoid(tf.add(score, beta)), ctx.causalMask); // α_ij, exactly 0 for j > i: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
`;

const CD_RELU2 = `${CD_SCORE}
  // Readout φ = ReLU(·)² with η_i = i, the number of keys: no exp, keys with negative scores get exactly
  // zero weight, and the weights do not have to sum to 1.
  const phi = tf.mul(tf.square(tf.relu(score)), ctx.causalMask); // φ(q_iᵀ h_ij), 0 for j > i: (B, H, T, T)
  const eta = tf.sum(ctx.causalMask, -1, true); // η_i = i: (T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
`;

const CD_LEARNED_TEMPERATURE = `
  // Input scale b = τ_h/√d with a learned per-head temperature τ_h (log-parameterised so it stays
  // positive): each head sets how peaked its coefficients are instead of inheriting 1/√d.
  const temperatureInit = 1;
  const logTau = ctx.param('logTau', [H, 1, 1], { constant: Math.log(temperatureInit) }); // ln τ_h: (H, 1, 1)
  const h = tf.mul(k, tf.mul(tf.exp(logTau), 1 / Math.sqrt(d))); // h_ij = τ_h k_j/√d: (B, H, T, d)
  const score = tf.matMul(q, h, false, true); // q_iᵀ h_ij: (B, H, T, T)
${CD_SOFTMAX_READOUT}`;

const CD_LENGTH_SCALED = `
  // Scale that grows with the number of keys: score_ij = c_h ln i · q_iᵀ k_j/√d (Scalable-Softmax,
  // arXiv:2501.19399). Under a fixed scale the largest coefficient fades as i grows; a ln i scale keeps
  // a head able to focus at any context length. c_h is learned per head (ln 1 = 0 is harmless: the
  // first query has a single key).
  const lengthScaleInit = 0.5;
  const c = ctx.param('lengthScale', [H, 1, 1], { constant: lengthScaleInit }); // c_h: (H, 1, 1)
  const logLength = tf.reshape(tf.log(tf.range(1, T + 1)), [T, 1]); // ln i for queries i = 1…T: (T, 1)
  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)
  const score = tf.mul(tf.matMul(q, h, false, true), tf.mul(c, logLength)); // c_h ln i · q_iᵀ h_ij: (B, H, T, T)
${CD_SOFTMAX_READOUT}`;

const CD_SOFTMAX_PLUS_ONE = `${CD_SCORE}
  // Normaliser η_i = 1 + Σ_{j≤i} exp(·) ("Attention is off by one", 2023): coefficients may sum to less
  // than 1, so a head with nothing relevant in its past can output ≈ 0 instead of dumping its weight
  // on some key (the attention-sink behaviour of arXiv:2309.17453).
  const s = tf.add(score, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // future gets −1e9: (B, H, T, T)
  const shift = tf.maximum(tf.max(s, -1, true), 0); // ≥ 0, so the implicit e^0 term also stays ≤ 1: (B, H, T, 1)
  const phi = tf.exp(tf.sub(s, shift)); // (B, H, T, T)
  const eta = tf.add(tf.sum(phi, -1, true), tf.exp(tf.neg(shift))); // η_i e^{−shift}: (B, H, T, 1)
  const alpha = tf.div(phi, eta); // α_ij: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
`;

const CD_STICK_BREAKING = `${CD_SCORE}
  // Readout φ = stick-breaking (arXiv:2410.17980): the nearest key takes a fraction β_ii = σ(score_ii)
  // of the weight, the next one a fraction of what is left, and so on back in time:
  //   α_ij = β_ij Π_{j<l≤i} (1 − β_il),   no normaliser (what is left over goes nowhere).
  // Recency comes from the readout itself, so no position encoding is needed. In log space
  // ln β_ij = −softplus(−score_ij), and the product is a sum of ln(1 − β_il) = −softplus(score_il) over
  // j < l ≤ i: one matmul with the strictly lower-triangular [l > j].
  const later = tf.sub(ctx.causalMask, tf.eye(T)); // [l > j], rows l, columns j: (T, T)
  const logRemaining = tf.matMul(tf.mul(tf.neg(tf.softplus(score)), ctx.causalMask), later); // Σ_{j<l≤i} ln(1 − β_il): (B, H, T, T)
  const alpha = tf.mul(tf.exp(tf.sub(logRemaining, tf.softplus(tf.neg(score)))), ctx.causalMask); // α_ij ≤ 1, 0 for j > i: (B, H, T, T)

  const y = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
`;

const CD_DIFFERENTIAL = `
  // Two coefficient maps from the two halves of each head's queries and keys, subtracted
  // (Differential Transformer, arXiv:2410.05258): α = softmax(q¹ h¹ᵀ) − λ_h softmax(q² h²ᵀ).
  // Weight that both maps put on irrelevant context cancels; λ_h is learned per head.
  const lambdaInit = 0.8;
  const lambda = ctx.param('lambda', [H, 1, 1], { constant: lambdaInit }); // λ_h: (H, 1, 1)
  const half = Math.floor(d / 2);
  const [q1, q2] = tf.split(q, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const [k1, k2] = tf.split(k, [half, d - half], 3); // (B, H, T, half), (B, H, T, d − half)
  const future = tf.mul(tf.sub(1, ctx.causalMask), -1e9); // (T, T)
  // Softmax coefficients with b = 1/√width and A_i = I, masked to j ≤ i.
  const coefficients = (qa: Tensor, ka: Tensor, width: number) =>
    tf.softmax(tf.add(tf.matMul(qa, tf.mul(ka, 1 / Math.sqrt(width)), false, true), future)); // (B, H, T, T)
  const alpha = tf.sub(coefficients(q1, k1, half), tf.mul(lambda, coefficients(q2, k2, d - half))); // (B, H, T, T)

  // As in the paper, each head's output is RMS-normalised and scaled by (1 − λ_init).
  const raw = tf.matMul(alpha, v); // Σ_j α_ij v_j: (B, H, T, d)
  const y = tf.mul(tf.mul(raw, tf.rsqrt(tf.add(tf.mean(tf.square(raw), -1, true), 1e-6))), 1 - lambdaInit); // (B, H, T, d)
`;

// ---------------------------------------------------------------------------------------------
// Test-time regression: m_i = argmin_m ½ Σ_{j≤i} γ_ij ‖v_j − m(k_j)‖², o_i = m_i(q_i).

const TTR_RBF_KERNEL = `
  // RBF kernel (QK-norm, arXiv:2010.04245): with unit-length queries and keys,
  // exp(g_h q̂·k̂) = e^{g_h}·exp(−g_h ‖q̂ − k̂‖²/2), a Gaussian kernel of bandwidth 1/√g_h. The gain g_h is
  // learned per head, and the bounded logits keep heads from saturating as the model grows.
  const gainInit = 8;
  const gain = ctx.param('kernelGain', [H, 1, 1], { constant: gainInit }); // g_h: (H, 1, 1)
  const unit = (t: Tensor) => tf.mul(t, tf.rsqrt(tf.add(tf.sum(tf.square(t), -1, true), 1e-6))); // t/‖t‖ over d: (B, H, T, d)
  const logGamma = tf.mul(tf.matMul(unit(q), unit(k), false, true), gain); // log γ_ij = g_h q̂_i·k̂_j: (B, H, T, T)
${TTR_NW_READOUT}`;

const TTR_LEARNED_BANDWIDTH = `
  // Kernel bandwidth: γ_ij = exp(q_i·k_j/(τ_h √d)) with a learned per-head bandwidth τ_h (log-parameterised
  // so it stays positive): a wide kernel averages many values, a narrow one picks out the nearest key.
  const bandwidthInit = 1;
  const logTau = ctx.param('logBandwidth', [H, 1, 1], { constant: Math.log(bandwidthInit) }); // ln τ_h: (H, 1, 1)
  const logGamma = tf.matMul(q, tf.mul(k, tf.mul(tf.exp(tf.neg(logTau)), 1 / Math.sqrt(d))), false, true); // q_i·k_j/(τ_h √d): (B, H, T, T)
${TTR_NW_READOUT}`;

const TTR_LINEAR_KERNEL = `
  // Kernel γ_ij = φ(q_i)·φ(k_j) with the positive feature map φ = elu + 1 (linear attention,
  // arXiv:2006.16236). The weights factor through d features, so the same fit has a recurrent form
  // with a d × d state; the quadratic form is written here because it is the simplest at short T.
  const phi = (t: Tensor) => tf.add(tf.elu(t), 1); // > 0: (B, H, T, d)
  const gamma = tf.mul(tf.matMul(phi(q), phi(k), false, true), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)

  // Local-constant fit with these weights; 1e-6 guards rows whose weights all underflow.
  const prediction = tf.div(tf.matMul(gamma, v), tf.add(tf.sum(gamma, -1, true), 1e-6)); // m_i(q_i): (B, H, T, d)
`;

const TTR_POWER_KERNEL = `
  // Polynomial kernel γ_ij = (q_i·k_j/√d)^p with p = 2 (power attention, arXiv:2507.04239): non-negative
  // weights without exp, and the kernel's feature space (degree-p products of key coordinates) sets the
  // size of the recurrent state, so state size can grow apart from the parameter count.
  const dot = tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true); // q_i·k_j/√d: (B, H, T, T)
  const gamma = tf.mul(tf.square(dot), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)

  // Local-constant fit with these weights; 1e-6 guards rows whose weights are all ≈ 0.
  const prediction = tf.div(tf.matMul(gamma, v), tf.add(tf.sum(gamma, -1, true), 1e-6)); // m_i(q_i): (B, H, T, d)
`;

const TTR_RIDGE = `
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
`;

const TTR_RETENTION = `
  // Linear regression m(k) = W k with the key covariance replaced by the identity and recency weights
  // γ_ij = λ_h^{i−j} (retention, RetNet, arXiv:2307.08621):
  //   W_i = Σ_{j≤i} λ_h^{i−j} v_j k_jᵀ/√d,   o_i = W_i q_i = Σ_{j≤i} λ_h^{i−j} (q_i·k_j/√d) v_j,
  // a recurrence with a d × d state. Heads get λ_h = 1 − 2^{−(retentionExponent + h)}: memories from
  // about 2^retentionExponent tokens upwards.
${RETENTION_DECAY}${lagLines('positions', 'lag')}  const gamma = tf.mul(tf.exp(tf.mul(logLambda, lag)), ctx.causalMask); // λ_h^{i−j}, 0 for j > i: (H, T, T)
  const fit = tf.matMul(tf.mul(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), gamma), v); // W_i q_i: (B, H, T, d)

  // Without a normaliser the fit's size depends on the decay; RetNet normalises each head (GroupNorm).
${RMS_NORM('prediction', 'fit')}`;

const TTR_GATED_LINEAR = `
  // Linear regression as in retention, with data-dependent recency weights γ_ij = Π_{j<l≤i} a_l,
  // a_l = σ(x_l w_h + b_h) per head (gated linear attention, arXiv:2312.06635; Mamba-2's scalar gate,
  // arXiv:2405.21060): each token decides how much of the old fit to forget. decayBiasInit starts a near 1.
  const decayBiasInit = 3;
${gateDecayLines('Wa', 'ba', 'decayBiasInit', 'cumLogA', 'logDecay')}  const gamma = tf.mul(tf.exp(logDecay), ctx.causalMask); // γ_ij, 0 for j > i: (B, H, T, T)
  const fit = tf.matMul(tf.mul(tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true), gamma), v); // W_i q_i: (B, H, T, d)

  // Without a normaliser the fit's size depends on the gates; normalise each head as GLA does.
${RMS_NORM('prediction', 'fit')}`;

// ---------------------------------------------------------------------------------------------
// Matrix mixer: Y = M·V.

const MM_LOGITS = `
  // Mixer logits Q Kᵀ/√d, as in the baseline.
  const logits = tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)
`;

const MM_LOW_RANK = `
  // Low-rank class: M = causal mask ∘ row-normalise(φ(Q) φ(K)ᵀ) with φ = elu + 1 > 0 (linear attention,
  // arXiv:2006.16236). Before masking M has rank ≤ d, which gives M·V a recurrent form with a d × d state;
  // it is written densely here because that is the simplest at short T.
  const phi = (t: Tensor) => tf.add(tf.elu(t), 1); // (B, H, T, d)
  const A = tf.mul(tf.matMul(phi(Q), phi(K), false, true), ctx.causalMask); // (B, H, T, T)
  const M = tf.div(A, tf.add(tf.sum(A, -1, true), 1e-6)); // rows sum to 1: (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
`;

const MM_SSD = `
  // Semiseparable class, Mamba-2's state-space duality (arXiv:2405.21060): M = L ∘ (C Bᵀ) with C = Q,
  // B = K and L_ij = Π_{j<l≤i} a_l, a_l = σ(x_l w_h + b_h) per head. L is 1-semiseparable, so M·V is a
  // recurrence with a d × d state; decayBiasInit starts a near 1.
  const decayBiasInit = 3;
${gateDecayLines('Wa', 'ba', 'decayBiasInit', 'cumLogA', 'logL')}  const L = tf.mul(tf.exp(logL), ctx.causalMask); // L_ij, 0 for j > i: (B, H, T, T)
  const M = tf.mul(L, tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true)); // (B, H, T, T)

  // Rows of M are not normalised; Mamba-2 normalises each head's output instead (RMS over d).
  const raw = tf.matMul(M, V); // M·V: (B, H, T, d)
${RMS_NORM('Y', 'raw')}`;

const MM_RETENTION = `
  // Low rank ∘ Toeplitz (retention, RetNet, arXiv:2307.08621): M = (Q Kᵀ/√d) ∘ D with the fixed decay
  // D_ij = λ_h^{i−j} for j ≤ i and λ_h = 1 − 2^{−(retentionExponent + h)}. D is both Toeplitz and
  // 1-semiseparable, so M·V is a recurrence with a d × d state; heads get memories from about
  // 2^retentionExponent tokens upwards.
${RETENTION_DECAY}${lagLines('positions', 'lag')}  const decay = tf.mul(tf.exp(tf.mul(logLambda, lag)), ctx.causalMask); // D: (H, T, T)
  const M = tf.mul(tf.matMul(Q, tf.mul(K, 1 / Math.sqrt(d)), false, true), decay); // (B, H, T, T)

  // Rows of M are not normalised; RetNet normalises each head's output (GroupNorm, here RMS over d).
  const raw = tf.matMul(M, V); // M·V: (B, H, T, d)
${RMS_NORM('Y', 'raw')}`;

const MM_HYENA = `
  // Toeplitz class with data gating (Hyena, arXiv:2302.10866): for each channel c,
  //   M^(c) = diag(Q_c) · F_h · diag(K_c),   (F_h)_ij = Σ_r a_hr e^{−λ_hr (i−j)} for j ≤ i,
  // a causal long convolution whose filter is a sum of filterModes decaying exponentials (as S4D
  // parameterises its kernels), so the filter's size does not grow with T. The gates make M data-dependent.
  const filterModes = 4;
  const amp = ctx.param('filterAmp', [H, filterModes, 1, 1], { normal: 0.5 }); // a_hr: (H, R, 1, 1)
  const logRate = ctx.param('filterLogRate', [H, filterModes, 1, 1], { normal: 1.5 }); // ln λ_hr + 2: (H, R, 1, 1)
${lagLines('positions', 'lag')}  // Rates λ = e^{logRate − 2} start spread around e^{−2}: memories 1/λ from under one token to about 150.
  const modes = tf.exp(tf.mul(tf.neg(tf.exp(tf.sub(logRate, 2))), lag)); // e^{−λ_hr (i−j)}: (H, R, T, T)
  const F = tf.mul(tf.sum(tf.mul(amp, modes), 1), ctx.causalMask); // F_h, 0 for j > i: (H, T, T)
  // tfjs matMul broadcasts batch dimensions but cannot send a gradient back into a broadcast operand,
  // so the filter is broadcast over the batch explicitly.
  const Y = tf.mul(Q, tf.matMul(tf.broadcastTo(F, [B, H, T, T]), tf.mul(K, V))); // diag(Q_c) F diag(K_c) V_c: (B, H, T, d)
`;

const MM_DIFFERENTIAL = `
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
`;

const MM_SIGMOID = `${MM_LOGITS}
  // Unnormalised mixer M = causal mask ∘ σ(logits + β_h) (sigmoid attention, arXiv:2409.04431): rows no
  // longer sum to 1, so entries do not compete. β_h starts at −sigmoidBiasScale·ln T, which puts the
  // longest row's sum near 1 at the start.
  const sigmoidBiasScale = 1;
  const beta = ctx.param('sigmoidBias', [H, 1, 1], { constant: -sigmoidBiasScale * Math.log(T) }); // β_h: (H, 1, 1)
  const M = tf.mul(tf.sigmoid(tf.add(logits, beta)), ctx.causalMask); // lower-triangular: (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
`;

const MM_SOFTMAX_PLUS_ONE = `${MM_LOGITS}
  // Rows sum to at most 1: M = mask ∘ exp(logits) / (1 + Σ_j exp(logits)) ("Attention is off by one",
  // 2023) — as if every row also mixed in a zero value vector, so a head can abstain.
  const masked = tf.add(logits, tf.mul(tf.sub(1, ctx.causalMask), -1e9)); // (B, H, T, T)
  const shift = tf.maximum(tf.max(masked, -1, true), 0); // ≥ 0, so the implicit e^0 term also stays ≤ 1: (B, H, T, 1)
  const E = tf.exp(tf.sub(masked, shift)); // (B, H, T, T)
  const M = tf.div(E, tf.add(tf.sum(E, -1, true), tf.exp(tf.neg(shift)))); // (B, H, T, T)

  const Y = tf.matMul(M, V); // Y = M·V: (B, H, T, d)
`;

// ---------------------------------------------------------------------------------------------

type Entry = Omit<Variant, 'framework' | 'block'> & { body: string; out: string };

const OWN: Readonly<Record<Framework, Entry[]>> = {
  coefficient_dynamics: [
    {
      id: 'cd-sigmoid',
      title: 'Sigmoid readout with length bias',
      reference: 'arXiv:2409.04431',
      idea: 'φ = σ(score + β_h) with β_h ≈ −ln T and no normaliser: keys stop competing for a unit budget, which removes the softmax bottleneck on how many keys a head can use at once.',
      body: CD_SIGMOID,
      out: 'y',
      knobs: knobs('sigmoidBiasScale'),
    },
    {
      id: 'cd-relu2',
      title: 'Squared-ReLU readout, η_i = i',
      reference: 'arXiv:2202.10447 (FLASH); arXiv:2109.08668 (Primer)',
      idea: 'φ = ReLU(·)² divided by the number of keys, as in FLASH: exactly sparse coefficients without exp, using the activation that Primer\'s evolutionary search found to scale well.',
      body: CD_RELU2,
      out: 'y',
    },
    {
      id: 'cd-learned-temperature',
      title: 'Learned per-head input scale',
      reference: 'arXiv:2010.04245 (learned scale); arXiv:2510.09389 (input scale b)',
      idea: 'b = τ_h/√d with τ_h learned per head: each head tunes its own sharpness, which wider models can use to specialise heads.',
      body: CD_LEARNED_TEMPERATURE,
      out: 'y',
      knobs: knobs('temperatureInit'),
    },
    {
      id: 'cd-length-scaled-temperature',
      title: 'Length-scaled temperature (Scalable-Softmax)',
      reference: 'arXiv:2501.19399',
      idea: 'Scores scaled by c_h ln i so the peak coefficient does not flatten as the number of keys grows, keeping long contexts as usable as short ones.',
      body: CD_LENGTH_SCALED,
      out: 'y',
      knobs: knobs('lengthScaleInit'),
    },
    {
      id: 'cd-softmax-plus-one',
      title: 'Softmax + 1 normaliser',
      reference: '"Attention is off by one" (Miller 2023); arXiv:2309.17453',
      idea: 'η_i = 1 + Σ exp(·) lets a head put weight on nothing, removing the attention-sink workaround that grows with model size.',
      body: CD_SOFTMAX_PLUS_ONE,
      out: 'y',
    },
    {
      id: 'cd-stick-breaking',
      title: 'Stick-breaking readout',
      reference: 'arXiv:2410.17980',
      idea: 'α_ij = β_ij Π_{j<l≤i}(1 − β_il) allocates weight from the nearest key backwards, a built-in recency bias that needs no position encoding and length-generalises.',
      body: CD_STICK_BREAKING,
      out: 'y',
    },
    {
      id: 'cd-differential',
      title: 'Differential coefficients',
      reference: 'arXiv:2410.05258',
      idea: 'α = softmax₁ − λ_h softmax₂ cancels weight both maps put on irrelevant keys, reported to match a larger baseline with fewer parameters.',
      body: CD_DIFFERENTIAL,
      out: 'y',
      knobs: knobs('lambdaInit'),
    },
  ],
  test_time_regression: [
    {
      id: 'ttr-rbf-kernel',
      title: 'RBF kernel via QK-norm with learned gain',
      reference: 'arXiv:2010.04245',
      idea: 'γ_ij = exp(g_h q̂·k̂) is a Gaussian kernel of learned bandwidth; bounded logits avoid the logit growth that destabilises larger models.',
      body: TTR_RBF_KERNEL,
      out: 'prediction',
      knobs: knobs('gainInit'),
    },
    {
      id: 'ttr-learned-bandwidth',
      title: 'Learned per-head kernel bandwidth',
      reference: 'arXiv:2501.12352 (kernel bandwidth); arXiv:2010.04245',
      idea: 'γ_ij = exp(q·k/(τ_h √d)) with τ_h learned: each head picks how local its regression is.',
      body: TTR_LEARNED_BANDWIDTH,
      out: 'prediction',
      knobs: knobs('bandwidthInit'),
    },
    {
      id: 'ttr-linear-kernel',
      title: 'Linear kernel φ(q)·φ(k), φ = elu + 1',
      reference: 'arXiv:2006.16236',
      idea: 'A d-feature kernel makes the fit a fixed-size recurrent state, trading sharpness for cost linear in T.',
      body: TTR_LINEAR_KERNEL,
      out: 'prediction',
    },
    {
      id: 'ttr-power-kernel',
      title: 'Polynomial (power) kernel, p = 2',
      reference: 'arXiv:2507.04239',
      idea: 'γ_ij = (q·k/√d)² gives non-negative weights without exp and a state size that can grow independently of the parameters.',
      body: TTR_POWER_KERNEL,
      out: 'prediction',
    },
    {
      id: 'ttr-ridge',
      title: 'Ridge-regularised local-constant fit',
      reference: 'arXiv:2501.12352; "Attention is off by one" (2023)',
      idea: 'Σγv/(λ_h + Σγ) shrinks the fit towards 0 when no key matches, letting heads abstain instead of forming attention sinks.',
      body: TTR_RIDGE,
      out: 'prediction',
      knobs: knobs('ridgeInit'),
    },
    {
      id: 'ttr-retention',
      title: 'Linear regression with exponential recency (retention)',
      reference: 'arXiv:2307.08621',
      idea: 'o_i = Σ λ_h^{i−j} (q_i·k_j) v_j: a decayed linear fit with a d × d recurrent state and multi-scale per-head memories.',
      body: TTR_RETENTION,
      out: 'prediction',
      knobs: knobs('retentionExponent'),
    },
    {
      id: 'ttr-gated-linear',
      title: 'Linear regression with gated recency (GLA / Mamba-2 scalar gate)',
      reference: 'arXiv:2312.06635; arXiv:2405.21060',
      idea: 'Data-dependent decays γ_ij = Π a_l let each token clear the linear fit, the key ingredient of recurrent models that close the gap to attention.',
      body: TTR_GATED_LINEAR,
      out: 'prediction',
      knobs: knobs('decayBiasInit'),
    },
  ],
  matrix_mixer: [
    {
      id: 'mm-low-rank',
      title: 'Low-rank mixer (linear attention, elu + 1)',
      reference: 'arXiv:2006.16236',
      idea: 'M = mask ∘ rownorm(φ(Q)φ(K)ᵀ) has rank ≤ d before masking, giving a recurrent form with cost linear in T.',
      body: MM_LOW_RANK,
      out: 'Y',
    },
    {
      id: 'mm-ssd',
      title: 'Semiseparable mixer (Mamba-2 SSD)',
      reference: 'arXiv:2405.21060',
      idea: 'M = L ∘ Q Kᵀ with a data-dependent 1-semiseparable L: selective forgetting with a recurrent state.',
      body: MM_SSD,
      out: 'Y',
      knobs: knobs('decayBiasInit'),
    },
    {
      id: 'mm-retention',
      title: 'Low rank ∘ Toeplitz decay (retention)',
      reference: 'arXiv:2307.08621',
      idea: 'M = Q Kᵀ ∘ λ_h^{i−j}: a fixed multi-scale decay on a low-rank mixer, recurrent with a d × d state.',
      body: MM_RETENTION,
      out: 'Y',
      knobs: knobs('retentionExponent'),
    },
    {
      id: 'mm-hyena',
      title: 'Data-gated Toeplitz mixer (Hyena-style long convolution)',
      reference: 'arXiv:2302.10866',
      idea: 'M^(c) = diag(Q_c) F_h diag(K_c) with an implicit exponential-sum filter: a long convolution made data-dependent by gating, sub-quadratic with FFTs.',
      body: MM_HYENA,
      out: 'Y',
      knobs: knobs('filterModes'),
    },
    {
      id: 'mm-differential',
      title: 'Difference of two softmax mixers',
      reference: 'arXiv:2410.05258',
      idea: 'M = M¹ − λ_h M² cancels shared weight on irrelevant context, allowing sparser effective mixers.',
      body: MM_DIFFERENTIAL,
      out: 'Y',
      knobs: knobs('lambdaInit'),
    },
    {
      id: 'mm-sigmoid',
      title: 'Unnormalised sigmoid mixer',
      reference: 'arXiv:2409.04431',
      idea: 'M = mask ∘ σ(logits + β_h), β_h ≈ −ln T: rows free of the sum-to-one constraint, so entries do not compete.',
      body: MM_SIGMOID,
      out: 'Y',
      knobs: knobs('sigmoidBiasScale'),
    },
    {
      id: 'mm-softmax-plus-one',
      title: 'Sub-stochastic rows (softmax + 1)',
      reference: '"Attention is off by one" (Miller 2023); arXiv:2309.17453',
      idea: 'Rows of M sum to at most 1, as if mixing in a zero value, so heads can abstain without attention sinks.',
      body: MM_SOFTMAX_PLUS_ONE,
      out: 'Y',
    },
  ],
};

const MODIFIER_META: Readonly<Record<Framework, Omit<Variant, 'framework' | 'block' | 'knobs'>[]>> = {
  coefficient_dynamics: [
    {
      id: 'cd-alibi',
      title: 'Fixed per-head decay of the score (ALiBi)',
      reference: 'arXiv:2108.12409',
      idea: 'score − m_h (i − j) with geometric slopes: a scalar transition that biases heads to different horizons and extrapolates to longer contexts.',
    },
    {
      id: 'cd-forgetting-gate',
      title: 'Data-dependent forget-gate transition (Forgetting Transformer)',
      reference: 'arXiv:2503.02130',
      idea: 'Coefficients scaled by Π f_l with f = σ(x w + b): the transition becomes a learned, input-dependent decay, shown to improve softmax attention at several scales.',
    },
    {
      id: 'cd-output-gate',
      title: 'Sigmoid output gate',
      reference: 'arXiv:2505.06708',
      idea: 'y_i ⊙ σ(x_i W_g) adds a cheap multiplicative non-linearity and removes attention sinks; reported to help consistently across model sizes.',
    },
  ],
  test_time_regression: [
    {
      id: 'ttr-alibi-recency',
      title: 'Exponential recency weights (ALiBi)',
      reference: 'arXiv:2108.12409',
      idea: 'γ_ij ∝ kernel × e^{−m_h (i−j)}: a per-head window on the regression data that biases heads to different horizons.',
    },
    {
      id: 'ttr-forgetting-recency',
      title: 'Gated recency weights (Forgetting Transformer)',
      reference: 'arXiv:2503.02130',
      idea: 'γ_ij ∝ kernel × Π f_l with learned input-dependent forget gates: the regression discounts stale data where the input says so.',
    },
    {
      id: 'ttr-output-gate',
      title: 'Sigmoid output gate',
      reference: 'arXiv:2505.06708',
      idea: 'm_i(q_i) ⊙ σ(x_i W_g) lets a position ignore a poor fit instead of forcing it into the residual stream.',
    },
  ],
  matrix_mixer: [
    {
      id: 'mm-alibi-toeplitz',
      title: 'Attention ∘ Toeplitz decay (ALiBi)',
      reference: 'arXiv:2108.12409',
      idea: 'M = rownorm(mask ∘ exp(QKᵀ/√d) ∘ e^{−m_h (i−j)}): a fixed Toeplitz factor biases heads to different horizons.',
    },
    {
      id: 'mm-forgetting-semiseparable',
      title: 'Attention ∘ data-dependent semiseparable decay (Forgetting Transformer)',
      reference: 'arXiv:2503.02130',
      idea: 'M = rownorm(mask ∘ exp(QKᵀ/√d) ∘ L) with L_ij = Π f_l learned from the input: softmax attention with selective forgetting.',
    },
    {
      id: 'mm-output-gate',
      title: 'Sigmoid output gate',
      reference: 'arXiv:2505.06708',
      idea: '(M·V) ⊙ σ(X W_g) adds a multiplicative non-linearity after mixing and removes attention sinks.',
    },
  ],
};

function buildCatalogue(): Variant[] {
  const out: Variant[] = [];
  for (const framework of FRAMEWORKS) {
    for (const e of OWN[framework]) {
      const { body, out: y, ...meta } = e;
      out.push({ ...meta, framework, block: assemble(framework, body, y) });
    }
    const base = baselineBlock(framework);
    for (const mod of modifiersFor(framework)) {
      const meta = MODIFIER_META[framework].find((m) => m.id === mod.id);
      const block = mod.apply(base);
      if (!meta || block === null) throw new Error(`catalogue: modifier ${mod.id} does not apply to the ${framework} baseline`);
      out.push({ ...meta, framework, block, ...(mod.knobs.length ? { knobs: mod.knobs } : {}) });
    }
  }
  return out;
}

export const CATALOGUE: readonly Variant[] = Object.freeze(buildCatalogue());

export function variantsFor(framework: Framework): Variant[] {
  return CATALOGUE.filter((v) => v.framework === framework);
}

/**
 * The causal mean y_i = (1/i) Σ_{j≤i} v_j, valid in every framework: α_ij = 1/i, uniform γ, or
 * M = mask / row count. A control known to be worse than attention; not in CATALOGUE.
 */
export const UNIFORM_CONTROL_BLOCK = `function attention(tf: Tf, ctx: AttentionContext, x: Tensor): Tensor {
  const [B, T, D] = x.shape;
  const H = ctx.nHeads;
  const d = ctx.headDim;
  // The fused projection keeps the baseline's parameter count; only its value third is used.
  const Wqkv = ctx.param('Wqkv', [D, 3 * D], 'glorot');
  const qkv = tf.matMul(tf.reshape(x, [B * T, D]), Wqkv); // (B·T, 3D)
  const v = tf.transpose(tf.reshape(tf.split(qkv, 3, 1)[2], [B, T, H, d]), [0, 2, 1, 3]); // values: (B, H, T, d)

  // Causal mean: every past position weighs 1/i, whatever the content.
  const alpha = tf.div(ctx.causalMask, tf.sum(ctx.causalMask, -1, true)); // (T, T)
  const y = tf.matMul(alpha, v); // (B, H, T, d)
${tail('y')}`;

/**
 * Blocks that read the future, one per framework, for tests of the causality check: not in
 * CATALOGUE. Each is a mistake an evolved block could plausibly make.
 */
export const NONCAUSAL_BLOCK: Readonly<Record<Framework, string>> = {
  // The mask is simply forgotten: softmax over the whole row.
  coefficient_dynamics: assemble(
    'coefficient_dynamics',
    `${CD_SCORE}
  const phi = tf.exp(tf.sub(score, tf.max(score, -1, true))); // (B, H, T, T)
  const alpha = tf.div(phi, tf.sum(phi, -1, true)); // normalised over every j, future included
  const y = tf.matMul(alpha, v); // (B, H, T, d)
`,
    'y',
  ),
  // Masked after normalising: the future leaks in through the denominator.
  test_time_regression: assemble(
    'test_time_regression',
    `
  const logGamma = tf.matMul(q, tf.mul(k, 1 / Math.sqrt(d)), false, true); // (B, H, T, T)
  const gamma = tf.exp(tf.sub(logGamma, tf.max(logGamma, -1, true))); // (B, H, T, T)
  const weights = tf.div(gamma, tf.sum(gamma, -1, true)); // normalised over every j, future included
  const prediction = tf.matMul(tf.mul(weights, ctx.causalMask), v); // (B, H, T, d)
`,
    'prediction',
  ),
  // The mask transposed: each row mixes j ≥ i, the future.
  matrix_mixer: assemble(
    'matrix_mixer',
    `${MM_LOGITS}
  const masked = tf.add(logits, tf.mul(tf.sub(1, tf.transpose(ctx.causalMask)), -1e9)); // (B, H, T, T)
  const E = tf.exp(tf.sub(masked, tf.max(masked, -1, true))); // (B, H, T, T)
  const M = tf.div(E, tf.sum(E, -1, true)); // upper-triangular: (B, H, T, T)
  const Y = tf.matMul(M, V); // (B, H, T, d)
`,
    'Y',
  ),
};
