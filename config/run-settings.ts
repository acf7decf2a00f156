// Builds a run's settings (the evolution workflow's input) from a profile and CLI overrides.
import { assertFramework, type Framework } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { EvoError } from '../core/errors';
import type { MutationSettings, RunSettings, ValidationSettings } from '../contract';
import type { EvaluatorSettings } from '../evaluator/profiles';
import type { ValidationSpec } from '../validate';

export const DEFAULT_VALIDATION: ValidationSettings = { timeMultiple: 8, wallTimeoutS: 300 };

/** Validation runs at the largest size's shape, so an accidental O(T³) or a huge block shows. */
export function validationSpec(evaluator: EvaluatorSettings, validation: ValidationSettings = DEFAULT_VALIDATION): ValidationSpec {
  const largest = evaluator.sizes[evaluator.sizes.length - 1];
  return {
    dModel: largest.dModel,
    nHeads: largest.nHeads,
    seqLen: evaluator.seqLen,
    batch: 2,
    timeMultiple: validation.timeMultiple,
    wallTimeoutMs: validation.wallTimeoutS * 1000,
  };
}

/** Iterations after the baseline when none are given: the seed's 35 at full scale. */
const DEFAULT_ITERATIONS: Record<string, number> = { full: 35, smoke: 3, micro: 2 };

export interface RunOptions {
  framework: string;
  profile?: string;
  iterations?: number;
  seed?: number;
  mutation?: Partial<MutationSettings>;
  heartbeatTimeoutS?: number;
}

export function runSettings(opts: RunOptions): RunSettings {
  const framework: Framework = assertFramework(opts.framework);
  const profile = opts.profile ?? 'smoke';
  const evaluator = profileSettings(profile);
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS[profile] ?? 3;
  if (!Number.isInteger(iterations) || iterations < 0) throw new EvoError(`--iterations must be a whole number ≥ 0, got ${opts.iterations}`, 'USAGE');
  const mutation: MutationSettings = { provider: 'offline', maxAttempts: 3, ...opts.mutation };
  if (mutation.provider === 'files' && !mutation.dir) throw new EvoError('mutation provider "files" needs a folder (mutation.dir)', 'USAGE');
  return {
    framework,
    iterations,
    seed: opts.seed ?? evaluator.seed,
    evaluator,
    mutation,
    validation: { ...DEFAULT_VALIDATION },
    screen: { enabled: false, steps: Math.max(1, Math.round(evaluator.training.steps / 10)), margin: 0.05 },
    heartbeatTimeoutS: opts.heartbeatTimeoutS ?? 60,
    // The longest single-size training the profile can need, with room for slow hardware.
    trainTimeoutH: profile === 'full' ? 96 : 2,
  };
}
