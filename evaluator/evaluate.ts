// Scores one program: trains every size (each in a sandboxed child, results cached by content
// hash of program, size, settings and data), then fits the scaling law. Used by the CLI's
// `evaluate` and, one size at a time, by the durable pipeline's training activity.
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheDir, repoRoot } from '../core/paths';
import { hashText, type Program } from '../core/program';
import { readJsonIfExists, writeJsonAtomic } from '../core/atomic-file';
import { runInSandbox } from '../sandbox/run';
import { nativeBackendInstalled } from './backend';
import { prepareData, type PreparedData } from './data/prepare';
import { fitScalingLaw, seedFitness, type ScalingFit } from '../score/scaling';
import type { EvaluatorSettings, SizeSpec } from './profiles';
import type { TrainJob, TrainProgress, TrainResult, TrainingConfig } from './train';

export interface SizeResult {
  size: string;
  nonEmbeddingParams: number;
  totalParams: number;
  attentionParams: number;
  valLoss: number;
  steps: number;
  backend: string;
  resumedFromStep: number;
  wallSeconds: number;
  /** True when this result came from the cache rather than a training run now. */
  cached: boolean;
}

export interface EvaluationResult {
  framework: string;
  programHash: string;
  profile: string;
  dataHash: string;
  fitAxis: EvaluatorSettings['fitAxis'];
  points: SizeResult[];
  fit: ScalingFit;
  fitness: number;
}

export interface TrainSizeOptions {
  onProgress?: (p: TrainProgress & { size: string }) => void;
  signal?: AbortSignal;
  /** Extra environment for the child (EVOSCALE_BACKEND, CUDA_VISIBLE_DEVICES). */
  env?: Record<string, string>;
  /** Wall-clock limit for one size's training. */
  wallTimeoutMs?: number;
}

/** Everything that determines a size's training outcome; its hash names the cache entry. */
export function trainingKey(programHash: string, size: SizeSpec, settings: EvaluatorSettings, dataHash: string): string {
  const t: TrainingConfig = settings.training;
  return hashText(JSON.stringify({ programHash, size, seqLen: settings.seqLen, dropout: settings.dropout, t, seed: settings.seed, dataHash }));
}

export function trainingDir(key: string): string {
  return cacheDir('train', key);
}

function sizeResult(size: SizeSpec, r: TrainResult, cached: boolean): SizeResult {
  return {
    size: size.name,
    nonEmbeddingParams: r.params.nonEmbedding,
    totalParams: r.params.total,
    attentionParams: r.params.attention,
    valLoss: r.valLoss,
    steps: r.steps,
    backend: r.backend,
    resumedFromStep: r.resumedFromStep,
    wallSeconds: r.wallSeconds,
    cached,
  };
}

/** Train one size (or return its cached result). Resumes from the size's checkpoint if one exists. */
export async function trainSize(program: Program, size: SizeSpec, settings: EvaluatorSettings, data: PreparedData, opts: TrainSizeOptions = {}): Promise<SizeResult> {
  const key = trainingKey(program.hash, size, settings, data.hash);
  const dir = trainingDir(key);
  const resultPath = path.join(dir, 'result.json');
  const cached = readJsonIfExists<TrainResult>(resultPath);
  if (cached) return sizeResult(size, cached, true);

  const job: TrainJob = {
    block: program.block,
    model: { vocabSize: data.vocabSize, seqLen: settings.seqLen, dModel: size.dModel, nLayers: size.nLayers, nHeads: size.nHeads, dropout: settings.dropout },
    training: settings.training,
    seed: settings.seed,
    trainPath: data.trainPath,
    valPath: data.valPath,
    checkpointPath: path.join(dir, 'checkpoint.bin'),
  };
  const native = nativeBackendInstalled();
  const result = await runInSandbox<TrainResult>({
    script: path.join(repoRoot, 'dist', 'sandbox', 'train-child.js'),
    input: job,
    scratchDir: path.join(dir, 'scratch'),
    readPaths: [data.dir, dir],
    writePaths: [dir],
    wallTimeoutMs: opts.wallTimeoutMs ?? 7 * 24 * 3600 * 1000,
    allowAddons: native,
    // wasm32 cannot address more than 4 GiB anyway; GPU drivers map large regions up front.
    memoryMb: native ? undefined : 8192,
    limitNativeMemory: !native,
    env: opts.env,
    signal: opts.signal,
    onMessage: (msg) => opts.onProgress?.({ ...(msg as TrainProgress), size: size.name }),
  });
  writeJsonAtomic(resultPath, { ...result, program: program.hash, size, key });
  return sizeResult(size, result, false);
}

export function fitPoints(points: SizeResult[], settings: EvaluatorSettings): { fit: ScalingFit; fitness: number } {
  const fit = fitScalingLaw(
    points.map((p) => ({ params: settings.fitAxis === 'total' ? p.totalParams : p.nonEmbeddingParams, loss: p.valLoss })),
  );
  return { fit, fitness: seedFitness(fit) };
}

/** Run `tasks` with at most `limit` in flight; results keep their order. */
async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  });
  await Promise.all(workers);
  return out;
}

export interface EvaluateOptions extends TrainSizeOptions {
  /** Sizes trained at once (each in its own process); default: one per CPU core. */
  concurrency?: number;
  /** The prepared corpus, when the caller already has it. */
  data?: PreparedData;
}

export async function evaluateProgram(program: Program, settings: EvaluatorSettings, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const data = opts.data ?? (await prepareData(settings.data));
  const concurrency = opts.concurrency ?? Math.max(1, os.cpus().length);
  const points = await pool(
    concurrency,
    settings.sizes.map((size) => () => trainSize(program, size, settings, data, opts)),
  );
  return {
    framework: program.framework,
    programHash: program.hash,
    profile: settings.profile,
    dataHash: data.hash,
    fitAxis: settings.fitAxis,
    points,
    ...fitPoints(points, settings),
  };
}
