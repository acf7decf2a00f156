// Published attention variants, one type-checked file each in propose/offline/variants/, derived from
// their framework's baseline; the offline mutator draws from them and prompts quote them. A block is
// read from its file's source text (dist/ holds only compiled JS), its metadata from the compiled module.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { extractBlock, FRAMEWORKS, type Framework } from '../../core/program';
import { variantSourceDir, variantSourcePath } from '../../core/paths';

interface KnobRange {
  min: number;
  max: number;
  integer?: boolean;
}

/** Every knob any catalogue block declares; one range per name, shared across frameworks. */
const KNOB_RANGES = {
  sigmoidBiasScale: { min: 0.25, max: 2 },
  temperatureInit: { min: 0.25, max: 4 },
  lengthScaleInit: { min: 0.1, max: 2 },
  lambdaInit: { min: 0.1, max: 0.9 },
  alibiSlopeExponent: { min: 2, max: 16 },
  forgetBiasInit: { min: 0.5, max: 8 },
  gainInit: { min: 2, max: 32 },
  bandwidthInit: { min: 0.25, max: 4 },
  ridgeInit: { min: 0.05, max: 20 },
  retentionExponent: { min: 2, max: 10 },
  decayBiasInit: { min: 0.5, max: 8 },
  filterModes: { min: 2, max: 8, integer: true },
} satisfies Record<string, KnobRange>;

export type KnobName = keyof typeof KNOB_RANGES;

/**
 * A numeric hyper-parameter declared in a block as `const <name> = <number>;`. Perturbing it
 * stays inside [min, max] (both > 0), where every value gives a causal, finite block.
 */
export interface Knob extends KnobRange {
  name: KnobName;
}

export const KNOBS: Readonly<Record<KnobName, Knob>> = Object.freeze(
  Object.fromEntries(Object.entries(KNOB_RANGES).map(([name, range]) => [name, { name, ...range }])) as Record<KnobName, Knob>,
);

/** What a variant file exports beside its block: `export const variant = {…} satisfies VariantMeta`. */
export interface VariantMeta {
  /** The file's name without `.ts`. */
  id: string;
  framework: Framework;
  title: string;
  /** arXiv id or paper. */
  reference: string;
  /** One sentence: what changes and why it might scale better. */
  idea: string;
  /** The block's perturbable constants ([] for none). */
  knobs: readonly KnobName[];
}

export interface Variant extends Omit<VariantMeta, 'knobs'> {
  /** A complete EVOLVE-BLOCK body defining `function attention(tf, ctx, x)`. */
  block: string;
  knobs: readonly Knob[];
}

/**
 * Every variant file, by framework, in catalogue order. The order is part of the behaviour: the offline
 * provider's seeded draws index into it, so reordering changes which block a given seed proposes.
 */
const VARIANT_IDS: Readonly<Record<Framework, readonly string[]>> = {
  coefficient_dynamics: [
    'cd-sigmoid', 'cd-relu2', 'cd-learned-temperature', 'cd-length-scaled-temperature', 'cd-softmax-plus-one',
    'cd-stick-breaking', 'cd-differential', 'cd-alibi', 'cd-forgetting-gate', 'cd-output-gate',
  ],
  test_time_regression: [
    'ttr-rbf-kernel', 'ttr-learned-bandwidth', 'ttr-linear-kernel', 'ttr-power-kernel', 'ttr-ridge',
    'ttr-retention', 'ttr-gated-linear', 'ttr-alibi-recency', 'ttr-forgetting-recency', 'ttr-output-gate',
  ],
  matrix_mixer: [
    'mm-low-rank', 'mm-ssd', 'mm-retention', 'mm-hyena', 'mm-differential',
    'mm-sigmoid', 'mm-softmax-plus-one', 'mm-alibi-toeplitz', 'mm-forgetting-semiseparable', 'mm-output-gate',
  ],
};

function loadVariant(framework: Framework, id: string): Variant {
  const file = variantSourcePath(id);
  const meta = (require(path.join(__dirname, 'variants', id)) as { variant?: VariantMeta }).variant;
  if (meta?.id !== id || meta.framework !== framework) {
    throw new Error(`catalogue: ${file} must export \`variant\` with id '${id}' and framework '${framework}'`);
  }
  return { ...meta, block: extractBlock(fs.readFileSync(file, 'utf8'), file), knobs: meta.knobs.map((name) => KNOBS[name]) };
}

function loadCatalogue(): Variant[] {
  const listed = new Set(FRAMEWORKS.flatMap((f) => VARIANT_IDS[f]));
  const unlisted = fs.readdirSync(variantSourceDir).filter((f) => f.endsWith('.ts') && !listed.has(f.slice(0, -'.ts'.length)));
  if (unlisted.length) throw new Error(`catalogue: ${unlisted.join(', ')} in ${variantSourceDir} missing from VARIANT_IDS`);
  return FRAMEWORKS.flatMap((framework) => VARIANT_IDS[framework].map((id) => loadVariant(framework, id)));
}

export const CATALOGUE: readonly Variant[] = Object.freeze(loadCatalogue());

export function variantsFor(framework: Framework): Variant[] {
  return CATALOGUE.filter((v) => v.framework === framework);
}
