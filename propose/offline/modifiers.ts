// Modifiers: pieces of published variants that compose mechanically with any block of a framework.
// A score prior is added to the framework's score variable before the readout; the output gate wraps
// the final merge of heads. Applied to the baseline, each gives a catalogue variant's block exactly.
import type { Framework } from '../../core/program';
import { KNOBS, type Knob } from './catalogue';

export interface Modifier {
  /** The catalogue variant this modifier produces when applied to the baseline. */
  id: string;
  kind: 'score-prior' | 'output-gate';
  knobs: readonly Knob[];
  /** The block with this modifier, or null where it does not apply. */
  apply(block: string): string | null;
}

/** The variable that holds pre-readout scores in each framework: where a prior is added. */
const SCORE_VAR: Readonly<Record<Framework, string>> = {
  coefficient_dynamics: 'score',
  test_time_regression: 'logGamma',
  matrix_mixer: 'logits',
};

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
  const alibiPositions = tf.range(0, T); // (T)
  const alibiLag = tf.mul(tf.sub(tf.reshape(alibiPositions, [T, 1]), tf.reshape(alibiPositions, [1, T])), ctx.causalMask); // i − j on the past, 0 on the future: (T, T)
  const recency = tf.mul(alibiSlopes, alibiLag); // −m_h (i − j): (H, T, T)
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
  const Wf = ctx.param('Wf', [D, H], 'glorot');
  const bf = ctx.param('bf', [H], { constant: forgetBiasInit });
  // ln σ(z) = −softplus(−z); tf.logSigmoid's gradient fails on intermediate tensors in tfjs 4.22.
  const cumLogF = tf.cumsum(tf.transpose(tf.reshape(tf.neg(tf.softplus(tf.neg(tf.add(tf.matMul(tf.reshape(x, [B * T, D]), Wf), bf)))), [B, T, H]), [0, 2, 1]), 2); // Σ_{l≤i} ln σ(x_l w_h + b_h): (B, H, T)
  const forget = tf.mul(tf.sub(tf.expandDims(cumLogF, 3), tf.expandDims(cumLogF, 2)), ctx.causalMask); // Σ_{j<l≤i}, 0 on the future: (B, H, T, T)
`;
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
    { id: ids.alibi, kind: 'score-prior', knobs: [KNOBS.alibiSlopeExponent], apply: scorePrior(framework, alibiLines(framework), 'recency', 'ALiBi recency prior') },
    { id: ids.forget, kind: 'score-prior', knobs: [KNOBS.forgetBiasInit], apply: scorePrior(framework, forgetLines(framework), 'forget', 'forget-gate decay') },
    { id: ids.gate, kind: 'output-gate', knobs: [], apply: outputGate },
  ];
}

