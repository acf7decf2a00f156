// The training activity, run by device workers (one training at a time each). Training happens
// in a sandboxed child process; this process only heartbeats, so heartbeats never stall and a
// crashing candidate cannot take the worker down. A retry resumes from the size's checkpoint.
import { Context, log } from '@temporalio/activity';
import { loadProgram, writeTrainingCurve } from '../archive';
import { trainSize as trainSizeLib } from '../evaluator/evaluate';
import { underFailureRule } from './errors';
import type { PreparedData } from '../evaluator/data/prepare';
import type { EvaluatorSettings, SizeSpec } from '../evaluator/profiles';
import type { Framework } from '../core/program';
import type { SeedRun, TrainingHeartbeat } from '../contract';
import type { TrainProgress } from '../evaluator/train';

export interface TrainSizeInput {
  runId: string;
  framework: Framework;
  programHash: string;
  size: SizeSpec;
  seed: number;
  evaluator: EvaluatorSettings;
  data: PreparedData;
}

/** Environment a device worker hands its training children (the device pinning, backend and engine). */
export function deviceEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['CUDA_VISIBLE_DEVICES', 'EVOSCALE_BACKEND', 'EVOSCALE_ENGINE', 'EVOSCALE_PYTHON']) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

export async function trainSize(input: TrainSizeInput): Promise<SeedRun> {
  return (await runTraining(input)).run;
}

/** The training activity's work, and whether its result came from the cache (nothing trained: a device worker's slots learn nothing from it). */
export async function runTraining(input: TrainSizeInput): Promise<{ run: SeedRun; cached: boolean }> {
  const ctx = Context.current();
  let last: TrainProgress | undefined;
  // Heartbeat on a timer from this process, with the latest progress the child reported.
  const where = { size: input.size.name, seed: input.seed };
  const beat = () =>
    ctx.heartbeat(
      (last
        ? { ...where, step: last.step, steps: last.steps, resumedFromStep: last.resumedFromStep, trainLoss: last.trainLoss, valLoss: last.valLoss }
        : { ...where, step: 0, steps: input.evaluator.training.steps, resumedFromStep: 0 }) satisfies TrainingHeartbeat,
    );
  beat();
  const timer = setInterval(beat, 2000);
  try {
    // The one failure rule (errors.ts): a cancelled or shut-down worker's attempt is retried and resumes
    // from the size's checkpoint; a diverged, too slow or crashing candidate is final (CandidateFailed).
    return await underFailureRule(async () => {
      const program = loadProgram(input.runId, input.framework, input.programHash);
      const r = await trainSizeLib(program, input.size, input.evaluator, input.data, input.seed, {
        env: deviceEnv(),
        signal: ctx.cancellationSignal,
        wallTimeoutMs: Math.max(60_000, ctx.info.startToCloseTimeoutMs),
        onProgress: (p) => {
          if (p.event === 'warning') return log.warn(`training ${p.size} seed ${p.seed}: ${p.message}`);
          if (p.event === 'start' && p.resumedFromStep > 0) log.info('resuming training from checkpoint', { size: p.size, step: p.resumedFromStep });
          last = p;
        },
      });
      // The loss curve goes to the run archive (for `evo report`), not into the workflow's history.
      const { attentionParams: _a, wallSeconds: _w, cached, curve, ...run } = r;
      writeTrainingCurve(input.runId, { programHash: input.programHash, size: input.size.name, seed: input.seed, steps: run.steps, curve });
      return { run, cached };
    });
  } finally {
    clearInterval(timer);
  }
}
