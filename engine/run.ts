// Runs the torch engine as a training child: picks the engine (EVOSCALE_ENGINE, else the run's), starts
// `python -m evoscale_engine train`, relays its progress and turns how it ends into a result or a
// classified failure. The child never runs candidate code (it interprets a traced graph), so it needs
// no sandbox beyond its own process group, killed on cancel or at the wall clock.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvoError, ProgramRejected } from '../core/errors';
import { writeFileAtomic } from '../core/atomic-file';
import { SandboxFailure } from '../sandbox/options';
import { enginePackageDir, findTorchPython } from './python';
import type { TrainJob, TrainProgress, TrainResult } from '../evaluator/train';
import type { EngineChoice, EngineSettings } from '../contract';
export type { EngineChoice, EngineSettings };

export const ENGINES = ['auto', 'tfjs', 'torch'] as const satisfies readonly EngineChoice[];
export const PRECISIONS = ['fp32', 'tf32', 'bf16'] as const satisfies readonly EngineSettings['precision'][];
/** A run that names no engine: each device worker's hardware decides, in float32, uncompiled. */
export const DEFAULT_ENGINE: EngineSettings = { engine: 'auto', precision: 'fp32', compile: false };

export function parseEngineChoice(value: string | undefined): EngineChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if ((ENGINES as readonly string[]).includes(v)) return v as EngineChoice;
  throw new EvoError(`unknown engine "${v}" (expected ${ENGINES.join(', ')})`, 'BAD_ENGINE');
}

/**
 * The engine a training is asked for: EVOSCALE_ENGINE where the training process's environment sets it
 * (a device worker's: the host knows its hardware and its interpreter), else the run's evaluator.engine,
 * else auto.
 */
export function requestedEngine(configured: EngineChoice | undefined, env: Record<string, string | undefined>): EngineChoice {
  return env.EVOSCALE_ENGINE?.trim() ? parseEngineChoice(env.EVOSCALE_ENGINE) : (configured ?? 'auto');
}

/** Whether `auto` found torch seeing a CUDA device, by interpreter and device pinning: Python takes seconds to ask. */
const seesCuda = new Map<string, boolean>();

/** Whether torch imports here and sees a CUDA device. A process pinned to the CPU or on a machine without an NVIDIA device node never starts Python to find out. */
async function torchSeesCuda(env: NodeJS.ProcessEnv): Promise<boolean> {
  if (env.CUDA_VISIBLE_DEVICES === '' || !fs.existsSync('/dev/nvidiactl')) return false;
  const key = `${env.EVOSCALE_PYTHON ?? ''}|${env.CUDA_VISIBLE_DEVICES ?? ''}`;
  let sees = seesCuda.get(key);
  if (sees === undefined) {
    try {
      const { python } = await findTorchPython(env);
      sees = await new Promise<boolean>((resolve) =>
        execFile(python, ['-c', 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'], { env, timeout: 120_000 }, (err) => resolve(!err)),
      );
    } catch {
      sees = false; // no interpreter with torch
    }
    seesCuda.set(key, sees);
  }
  return sees;
}

async function torchImports(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await findTorchPython(env);
    return true;
  } catch {
    return false;
  }
}

/**
 * The engine a training runs on: `torch` needs an interpreter with torch (a one-line error otherwise);
 * `auto` takes torch where it imports and sees a CUDA device, and on a CPU host where tfjs on wasm cannot
 * hold the training's shape (`wasmProblem`, evaluator/backend.ts's wasmCapacityProblem) and torch imports;
 * tfjs everywhere else (where that shape is then refused with the problem's one line).
 */
export async function resolveEngine(choice: EngineChoice, env: Record<string, string | undefined>, wasmProblem: string | null = null): Promise<'tfjs' | 'torch'> {
  const all = { ...process.env, ...env };
  if (choice === 'torch') await findTorchPython(all);
  if (choice !== 'auto') return choice;
  if (await torchSeesCuda(all)) return 'torch';
  return wasmProblem !== null && (await torchImports(all)) ? 'torch' : 'tfjs';
}

/** The evaluator's job with the traced graph in place of the block, and the engine's own settings. */
export interface TorchTrainJob extends Omit<TrainJob, 'block'> {
  graph: string;
  device: string;
  precision: EngineSettings['precision'];
  compile: EngineSettings['compile'];
  threads?: number;
}

export interface TorchRunOptions {
  env?: Record<string, string>;
  signal?: AbortSignal;
  wallTimeoutMs: number;
  onProgress?: (p: TrainProgress) => void;
}

const STDERR_TAIL = 4000;

/** Trains one job with the torch engine; the job file is written beside its checkpoint. */
export async function trainWithTorch(job: TorchTrainJob, opts: TorchRunOptions): Promise<TrainResult> {
  const { python } = await findTorchPython({ ...process.env, ...opts.env });
  const jobPath = path.join(path.dirname(job.checkpointPath), 'torch-job.json');
  fs.mkdirSync(path.dirname(jobPath), { recursive: true });
  writeFileAtomic(jobPath, JSON.stringify(job));
  if (opts.signal?.aborted) throw new SandboxFailure('torch engine was cancelled before it started', 'killed');
  const child = spawn(python, ['-m', 'evoscale_engine', 'train', jobPath], {
    env: { ...process.env, ...opts.env, PYTHONPATH: enginePackageDir, EVOSCALE_ENGINE_PARENT_PID: String(process.pid) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: one kill reaches everything it started
  });
  let result: TrainResult | undefined;
  let stderr = '';
  let buffered = '';
  let why: SandboxFailure | undefined;
  const kill = (failure: SandboxFailure) => {
    why ??= failure;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const onAbort = () => kill(new SandboxFailure('torch engine was cancelled', 'killed'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => kill(new SandboxFailure(`torch engine ran past its ${Math.round(opts.wallTimeoutMs / 1000)} s wall-clock limit`, 'timeout')), opts.wallTimeoutMs);
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const msg = JSON.parse(line) as { progress?: TrainProgress; result?: TrainResult };
      if (msg.progress) opts.onProgress?.(msg.progress);
      if (msg.result) result = msg.result;
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(new EvoError(`could not start ${python}: ${err.message}`, 'NO_TORCH')));
    child.on('close', (c) => resolve(c));
  }).finally(() => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  });
  if (why) throw why;
  const last = stderr.trim().split('\n').pop() ?? '';
  if (code === 0 && result) return result;
  if (code === 2) throw new EvoError(last, 'TORCH_ENGINE');
  if (code === 3) throw new ProgramRejected(last.replace(/^evoscale_engine: /, ''), 'divergence');
  if (code === 4) throw new EvoError(last, 'GPU_OUT_OF_MEMORY', 'infrastructure');
  throw new EvoError(`torch engine exited with status ${code}: ${last}`, 'TORCH_ENGINE', 'infrastructure');
}
