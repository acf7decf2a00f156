// Builds a run's settings (the evolution workflow's input) from a profile and CLI overrides.
import { assertFramework, type Framework } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { EvoError } from '../core/errors';
import type { EngineSettings, FitnessSettings, MutationSettings, RunSettings, ValidationSettings } from '../contract';
import { DEFAULT_ENGINE } from '../engine/run';
import { DEFAULT_FITNESS } from '../score/select';
import type { EvaluatorSettings } from '../evaluator/profiles';
import type { ValidationSpec } from '../validate';

export const DEFAULT_VALIDATION: ValidationSettings = { timeMultiple: 8, wallTimeoutS: 300 };

/**
 * Validation counts work at the largest size's shape, so an accidental O(T³) or a huge block shows, and runs
 * the behaviour checks at every other size's shape too, so a block that misbehaves only at some width or head
 * count is refused before it trains there.
 */
export function validationSpec(evaluator: EvaluatorSettings, validation: ValidationSettings = DEFAULT_VALIDATION): ValidationSpec {
  const largest = evaluator.sizes[evaluator.sizes.length - 1];
  return {
    dModel: largest.dModel,
    nHeads: largest.nHeads,
    otherSizes: evaluator.sizes.slice(0, -1).map(({ name, dModel, nHeads }) => ({ name, dModel, nHeads })),
    seqLen: evaluator.seqLen,
    batch: 2,
    timeMultiple: validation.timeMultiple,
    wallTimeoutMs: validation.wallTimeoutS * 1000,
  };
}

/** Seeds as given, or one-line reasons: whole numbers ≥ 0, none repeated, at least one. */
export function checkSeeds(seeds: number[]): number[] {
  if (seeds.length === 0) throw new EvoError('give at least one seed', 'USAGE');
  for (const s of seeds) if (!Number.isSafeInteger(s) || s < 0) throw new EvoError(`a seed must be a whole number ≥ 0, got ${s}`, 'USAGE');
  if (new Set(seeds).size !== seeds.length) throw new EvoError(`seeds repeat: ${seeds.join(', ')}`, 'USAGE');
  return seeds;
}

/** `count` seeds counting up from `base`, or a list as given ("3" → base, base+1, base+2; "1,5,9" → 1, 5, 9). */
export function parseSeeds(text: string, base: number): number[] {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 64) throw new EvoError(`--seeds: a count from 1 to 64, or a list like 1,2,3; got "${text}"`, 'USAGE');
    return Array.from({ length: n }, (_, i) => base + i);
  }
  if (!/^\d+(,\d+)+$/.test(text)) throw new EvoError(`--seeds: a count from 1 to 64, or a list like 1,2,3; got "${text}"`, 'USAGE');
  return checkSeeds(text.split(',').map(Number));
}

/** Iterations after the baseline when none are given: the seed's 35 at full scale. */
const DEFAULT_ITERATIONS: Record<string, number> = { full: 35, smoke: 3, micro: 2 };

export interface RunOptions {
  framework: string;
  profile?: string;
  iterations?: number;
  seed?: number;
  /** Training seeds (default: the profile's). */
  seeds?: number[];
  fitness?: Partial<FitnessSettings>;
  mutation?: Partial<MutationSettings>;
  /** The engine the run asks for (default: auto, fp32, uncompiled); a device worker's EVOSCALE_ENGINE wins. */
  engine?: Partial<EngineSettings>;
  heartbeatTimeoutS?: number;
}

export function runSettings(opts: RunOptions): RunSettings {
  const framework: Framework = assertFramework(opts.framework);
  const profile = opts.profile ?? 'smoke';
  const evaluator = profileSettings(profile);
  if (opts.seeds) evaluator.seeds = checkSeeds(opts.seeds);
  evaluator.engine = { ...DEFAULT_ENGINE, ...opts.engine };
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS[profile] ?? 3;
  if (!Number.isInteger(iterations) || iterations < 0) throw new EvoError(`--iterations must be a whole number ≥ 0, got ${opts.iterations}`, 'USAGE');
  const mutation: MutationSettings = { provider: 'offline', maxAttempts: 3, ...opts.mutation };
  if (mutation.provider === 'files' && !mutation.dir) throw new EvoError('mutation provider "files" needs a folder (mutation.dir)', 'USAGE');
  return {
    framework,
    iterations,
    seed: opts.seed ?? evaluator.seeds[0],
    evaluator,
    fitness: { ...DEFAULT_FITNESS, ...opts.fitness },
    mutation,
    validation: { ...DEFAULT_VALIDATION },
    screen: { enabled: false, steps: Math.max(1, Math.round(evaluator.training.steps / 10)), margin: 0.05 },
    heartbeatTimeoutS: opts.heartbeatTimeoutS ?? 60,
    // The longest single-size training the profile can need, with room for slow hardware.
    trainTimeoutH: profile === 'full' ? 96 : 2,
  };
}
