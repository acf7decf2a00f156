// Scores one program: trains every size with every seed (each in a sandboxed child, results cached
// by content hash of program, size, seed, settings and data), and the framework's baseline likewise,
// then scores the program against it. Used by the CLI's `evaluate` and, one training at a time, by
// the durable pipeline's training activity.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheDir, repoRoot } from '../core/paths';
import { baselineProgram, hashText, type Program } from '../core/program';
import { readJsonIfExists, writeJsonAtomic } from '../core/atomic-file';
import { runInSandbox } from '../sandbox/run';
import { EvoError } from '../core/errors';
import { nativeBackendInstalled, trainsOnWasm, wasmCapacityProblem } from './backend';
import { prepareData, type PreparedData } from './data/prepare';
import { DEFAULT_FITNESS, scoreAgainstBaseline, sizePoints, type Score } from '../score/select';
import type { EngineSettings, EvaluatorSettings, FitnessSettings, SeedRun, SizePoint, SizeSpec } from '../contract';
import { previousCheckpointPath, type CurvePoint, type TrainJob, type TrainProgress, type TrainResult, type TrainingConfig } from './train';
import { DEFAULT_ENGINE, requestedEngine, resolveEngine, trainWithTorch } from '../engine/run';
import { graphStoreDir, storeGraph, traceProgram } from '../trace';

/** One training's outcome as the evaluator reports it. */
export interface SeedResult extends SeedRun {
  attentionParams: number;
  wallSeconds: number;
  /** True when this result came from the cache rather than a training run now. */
  cached: boolean;
  /** Train loss at every evaluation, with the validation loss (the run archive keeps it for reports). */
  curve: CurvePoint[];
}

export interface EvaluationResult {
  framework: string;
  programHash: string;
  profile: string;
  dataHash: string;
  fitAxis: EvaluatorSettings['fitAxis'];
  seeds: number[];
  /** Every (size, seed) training of the program. */
  runs: SeedResult[];
  points: SizePoint[];
  /** The framework's baseline at the same sizes, seeds and data: what the fitness is relative to. */
  baseline: { programHash: string; runs: SeedResult[]; points: SizePoint[] };
  score: Score;
  data: DataUse;
}

/** How hard a profile leans on its corpus: repeated data measures memorisation, not architecture. */
export interface DataUse {
  trainTokens: number;
  /** Tokens one training reads: steps × batch × sequence length. */
  tokensPerTraining: number;
  /** Passes of one training over the training split. */
  passes: number;
}

/** More passes than this and the evaluator warns: the scaling then says more about memorising the corpus. */
export const MAX_PASSES_WITHOUT_WARNING = 4;

export function dataUse(settings: EvaluatorSettings, data: Pick<PreparedData, 'trainTokens'>): DataUse {
  const t = settings.training;
  const tokensPerTraining = t.steps * t.batchSize * settings.seqLen;
  return { trainTokens: data.trainTokens, tokensPerTraining, passes: tokensPerTraining / data.trainTokens };
}

export interface TrainSizeOptions {
  onProgress?: (p: TrainProgress & { size: string; seed: number }) => void;
  signal?: AbortSignal;
  /** Extra environment for the child (EVOSCALE_BACKEND, CUDA_VISIBLE_DEVICES, EVOSCALE_ENGINE, EVOSCALE_PYTHON). */
  env?: Record<string, string>;
  /** Wall-clock limit for one size's training. */
  wallTimeoutMs?: number;
}

/** Everything that determines a size's training outcome; its hash names the cache entry. */
export function trainingKey(programHash: string, size: SizeSpec, settings: EvaluatorSettings, dataHash: string, seed: number, engine: 'tfjs' | 'torch' = 'tfjs'): string {
  const t: TrainingConfig = settings.training;
  // format 2: results carry time per step and tensor memory. The engine is named only when it is not
  // tfjs, and torch's precision and compilation only when not fp32 and uncompiled, so earlier entries keep their keys.
  const { precision, compile } = settings.engine ?? DEFAULT_ENGINE;
  const torch = engine === 'tfjs' ? {} : { engine, ...(precision === 'fp32' ? {} : { precision }), ...(compile ? { compile } : {}) };
  return hashText(JSON.stringify({ programHash, size, seqLen: settings.seqLen, dropout: settings.dropout, t, seed, dataHash, format: 2, ...torch }));
}

/** The training child's working folder (checkpoints, scratch): the only place the child may write. */
export function trainingDir(key: string): string {
  return cacheDir('train', key);
}

/**
 * Where the parent records a training's result, from the child's authenticated report: outside every
 * child's writable folders, so no candidate can plant a cache hit.
 */
export function trainingResultPath(key: string): string {
  return cacheDir('results', `${key}.json`);
}

/** The checkpoints and scratch of a training whose result is recorded: nothing will resume from them. */
export function removeTrainingFiles(key: string): void {
  const dir = trainingDir(key);
  const checkpoint = path.join(dir, 'checkpoint.bin');
  // The (empty) folder stays: another run training the same key at this moment still writes into it.
  const torchCheckpoint = path.join(dir, 'checkpoint.pt'); // the torch engine's
  for (const f of [checkpoint, previousCheckpointPath(checkpoint), torchCheckpoint, path.join(dir, 'scratch')]) fs.rmSync(f, { recursive: true, force: true });
}

/** A recorded result: the child's report, and on torch the hash of the graph it trained. */
type RecordedResult = TrainResult & { graph?: string };

function seedResult(size: SizeSpec, seed: number, r: RecordedResult, cached: boolean): SeedResult {
  return {
    size: size.name,
    seed,
    nonEmbeddingParams: r.params.nonEmbedding,
    totalParams: r.params.total,
    attentionParams: r.params.attention,
    valLoss: r.valLoss,
    steps: r.steps,
    backend: r.backend,
    resumedFromStep: r.resumedFromStep,
    wallSeconds: r.wallSeconds,
    msPerStep: r.msPerStep,
    peakBytes: r.peakBytes,
    cached,
    curve: r.curve,
    ...(r.graph ? { graph: r.graph } : {}),
  };
}

/** Train one size with one seed (or return its cached result). Resumes from its checkpoint if one exists. */
export async function trainSize(
  program: Program,
  size: SizeSpec,
  settings: EvaluatorSettings,
  data: PreparedData,
  seed: number,
  opts: TrainSizeOptions = {},
): Promise<SeedResult> {
  const native = nativeBackendInstalled();
  // A shape past the wasm heap is the profile's problem, not the candidate's: auto takes torch for it where
  // torch imports, and tfjs refuses it before training.
  const onWasm = trainsOnWasm(opts.env?.EVOSCALE_BACKEND ?? process.env.EVOSCALE_BACKEND, native);
  const tooBig = onWasm ? wasmCapacityProblem(size.name, settings.training.batchSize, settings.seqLen, data.vocabSize) : null;
  const engine = await resolveEngine(requestedEngine(settings.engine?.engine, { ...process.env, ...opts.env }), opts.env ?? {}, tooBig);
  const key = trainingKey(program.hash, size, settings, data.hash, seed, engine);
  const dir = trainingDir(key);
  const resultPath = trainingResultPath(key);
  const cached = readJsonIfExists<RecordedResult>(resultPath);
  if (cached) return seedResult(size, seed, cached, true);

  const job: TrainJob = {
    block: program.block,
    model: { vocabSize: data.vocabSize, seqLen: settings.seqLen, dModel: size.dModel, nLayers: size.nLayers, nHeads: size.nHeads, dropout: settings.dropout },
    training: settings.training,
    seed,
    trainPath: data.trainPath,
    valPath: data.valPath,
    checkpointPath: path.join(dir, 'checkpoint.bin'),
  };
  if (engine === 'torch') {
    const result = await trainSizeOnTorch(job, dir, size.name, settings.engine ?? DEFAULT_ENGINE, opts);
    writeJsonAtomic(resultPath, { ...result, program: program.hash, size, seed, key });
    removeTrainingFiles(key);
    return seedResult(size, seed, result, false);
  }
  if (tooBig) throw new EvoError(tooBig, 'WASM_HEAP');
  const scratchDir = path.join(dir, 'scratch');
  let result: TrainResult;
  try {
    result = await runInSandbox<TrainResult>({
      script: path.join(repoRoot, 'dist', 'sandbox', 'train-child.js'),
      input: job,
      scratchDir,
      readPaths: [data.dir, dir],
      writePaths: [dir],
      wallTimeoutMs: opts.wallTimeoutMs ?? 7 * 24 * 3600 * 1000,
      allowAddons: native,
      // wasm32 cannot address more than 4 GiB anyway; GPU drivers map large regions up front.
      memoryMb: native ? undefined : 8192,
      limitNativeMemory: !native,
      env: opts.env,
      signal: opts.signal,
      onMessage: (msg) => opts.onProgress?.({ ...(msg as TrainProgress), size: size.name, seed }),
    });
  } catch (err) {
    // The candidate's own fault is final: nothing will resume from its checkpoints.
    if (err instanceof EvoError && err.fault === 'candidate') removeTrainingFiles(key);
    throw err;
  } finally {
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
  writeJsonAtomic(resultPath, { ...result, program: program.hash, size, seed, key });
  removeTrainingFiles(key);
  return seedResult(size, seed, result, false);
}

/**
 * One training on the torch engine: the block is traced at the training shape in the sandbox (it is
 * untrusted code), the graph stored under its hash in the state folder's graph store (where run archives
 * copy it from), and the engine interprets it.
 */
async function trainSizeOnTorch(job: TrainJob, dir: string, sizeName: string, engine: EngineSettings, opts: TrainSizeOptions): Promise<RecordedResult> {
  const wallTimeoutMs = opts.wallTimeoutMs ?? 7 * 24 * 3600 * 1000;
  const shape = { batch: job.training.batchSize, seqLen: job.model.seqLen, dModel: job.model.dModel, nHeads: job.model.nHeads };
  const [graph] = await traceProgram(job.block, [shape], path.join(dir, 'scratch'), { wallTimeoutMs: Math.min(wallTimeoutMs, 600_000), signal: opts.signal });
  const { block: _block, ...rest } = job;
  const cpu = (opts.env?.CUDA_VISIBLE_DEVICES ?? process.env.CUDA_VISIBLE_DEVICES) === '';
  const result = await trainWithTorch(
    {
      ...rest,
      graph: storeGraph(graphStoreDir(), graph),
      checkpointPath: path.join(dir, 'checkpoint.pt'),
      device: cpu ? 'cpu' : 'auto',
      precision: engine.precision,
      compile: engine.compile,
      // One CPU thread a training, as tfjs-wasm: the evaluator runs one training per core, and on a GPU
      // the host thread only launches kernels.
      threads: 1,
    },
    { env: opts.env, signal: opts.signal, wallTimeoutMs, onProgress: opts.onProgress ? (p) => opts.onProgress!({ ...p, size: sizeName, seed: job.seed }) : undefined },
  );
  return { ...result, graph: graph.hash };
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

export interface EvaluateOptions extends Omit<TrainSizeOptions, 'onProgress'> {
  /** Each training's progress, with the hash of the program it trains (the program's and the baseline's run side by side). */
  onProgress?: (p: TrainProgress & { size: string; seed: number; program: string }) => void;
  /** Trainings at once (each in its own process); default: one per CPU core. */
  concurrency?: number;
  /** The prepared corpus, when the caller already has it. */
  data?: PreparedData;
  /** How the program is scored against the baseline (default: DEFAULT_FITNESS). */
  fitness?: FitnessSettings;
}

/**
 * Trains the program and its framework's baseline at every size with every seed (cached, so the
 * baseline costs once), then scores the program against the baseline, paired by seed.
 */
export async function evaluateProgram(program: Program, settings: EvaluatorSettings, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const data = opts.data ?? (await prepareData(settings.data));
  const concurrency = opts.concurrency ?? Math.max(1, os.cpus().length);
  const baseline = baselineProgram(program.framework);
  const programs = baseline.hash === program.hash ? [program] : [program, baseline];
  const jobs = programs.flatMap((p) => settings.seeds.flatMap((seed) => settings.sizes.map((size) => ({ p, seed, size }))));
  const results = await pool(
    concurrency,
    jobs.map(({ p, seed, size }) => () => trainSize(p, size, settings, data, seed, { ...opts, onProgress: opts.onProgress && ((e) => opts.onProgress!({ ...e, program: p.hash })) })),
  );
  const runsOf = (p: Program) => results.filter((_, i) => jobs[i].p === p);
  const sizes = settings.sizes.map((s) => s.name);
  const runs = runsOf(program);
  const points = sizePoints(runs, sizes, settings.seeds);
  const baseRuns = runsOf(programs[programs.length - 1]);
  const basePoints = sizePoints(baseRuns, sizes, settings.seeds);
  return {
    framework: program.framework,
    programHash: program.hash,
    profile: settings.profile,
    dataHash: data.hash,
    fitAxis: settings.fitAxis,
    seeds: settings.seeds,
    runs,
    points,
    baseline: { programHash: baseline.hash, runs: baseRuns, points: basePoints },
    score: scoreAgainstBaseline(points, basePoints, settings.fitAxis, opts.fitness ?? DEFAULT_FITNESS),
    data: dataUse(settings, data),
  };
}
