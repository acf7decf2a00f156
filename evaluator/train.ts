// Trains one model size on one program: seeded init and data order, AdamW with warmup and a
// schedule, periodic validation, atomic checkpoints and exact resume. Runs inside the sandboxed
// training child (sandbox/train-child.ts); nothing here trusts the block beyond calling it.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from './backend';
import { compileAttention, hashText } from '../core/program';
import { seedFor } from './attention-runtime';
import { TransformerLM, type ModelConfig, type ParamCounts } from './model';
import { AdamW } from './optimizer';
import { tensorApi } from './fast-matmul';
import { writeFileAtomic } from '../core/atomic-file';
import { mulberry32 } from '../core/random';
import { loadTokens } from './data/token-file';
import { EvoError, ProgramRejected } from '../core/errors';
import type { TrainingConfig } from '../contract';
export type { TrainingConfig };

export interface TrainJob {
  block: string;
  model: ModelConfig;
  training: TrainingConfig;
  seed: number;
  trainPath: string;
  valPath: string;
  /** File the checkpoint is written to (atomically) and resumed from; the one before it is kept beside it (previousCheckpointPath). */
  checkpointPath: string;
}

/** The checkpoint before the latest, kept so a corrupt latest one costs a few steps, not the training. */
export function previousCheckpointPath(checkpointPath: string): string {
  return `${checkpointPath}.prev`;
}

export interface CurvePoint {
  step: number;
  trainLoss: number;
  valLoss?: number;
}

export interface TrainProgress {
  /** 'warning': something the user should know that did not stop the training (`message` says what). */
  event: 'start' | 'step' | 'eval' | 'checkpoint' | 'warning';
  step: number;
  steps: number;
  trainLoss?: number;
  valLoss?: number;
  lr: number;
  /** Step the run started from (0, or the checkpoint it resumed). */
  resumedFromStep: number;
  /** Live tensors at an evaluation: flat across steps, or something leaks. */
  tensors?: number;
  message?: string;
}

export interface TrainResult {
  valLoss: number;
  finalTrainLoss: number;
  steps: number;
  params: ParamCounts;
  backend: string;
  curve: CurvePoint[];
  resumedFromStep: number;
  wallSeconds: number;
  /** Wall milliseconds per training step in this process (evaluation and checkpoints excluded). */
  msPerStep: number;
  /** Most bytes held by tensors at the end of a forward pass: weights, optimizer state and the activations backward needs. */
  peakBytes: number;
}

export function learningRateAt(step: number, cfg: TrainingConfig): number {
  const { learningRate: lr, warmupSteps, steps, schedule, minLrRatio } = cfg;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  if (schedule === 'constant') return lr;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, steps - warmupSteps));
  const floor = lr * minLrRatio;
  const frac = schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return floor + (lr - floor) * frac;
}

/**
 * The training batch of step `step`: random windows drawn from a PRNG seeded by (seed, step), so
 * the data position and RNG state after a resume are a function of the step alone.
 */
export function trainingBatch(tokens: Int32Array, step: number, seed: number, batch: number, T: number): { ids: Int32Array; targets: Int32Array } {
  const rand = mulberry32(seedFor(seed, `batch:${step}`));
  const ids = new Int32Array(batch * T);
  const targets = new Int32Array(batch * T);
  const span = tokens.length - T - 1;
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(rand() * span);
    ids.set(tokens.subarray(start, start + T), b * T);
    targets.set(tokens.subarray(start + 1, start + T + 1), b * T);
  }
  return { ids, targets };
}

// ---- checkpoints: one file, written atomically: magic, SHA-256 of everything after it, header length,
// JSON header, float32 data. The checksum catches what atomic writes cannot: a disk or copy that
// changed the bytes afterwards. The previous checkpoint is kept, so a corrupt one costs a few steps.
const MAGIC = 'EVOCKPT2';
const DIGEST_BYTES = 32;

interface CheckpointHeader {
  jobHash: string;
  step: number;
  optimizerStep: number;
  curve: CurvePoint[];
  tensors: { key: string; shape: number[]; offset: number; size: number }[];
}

function jobHash(job: TrainJob): string {
  return hashText(JSON.stringify([job.block, job.model, job.training, job.seed]));
}

function stateTensors(model: TransformerLM, opt: AdamW): [string, tf.Variable][] {
  const out: [string, tf.Variable][] = [];
  for (const [name, p] of model.variables()) {
    out.push([`param:${name}`, p], [`m:${name}`, opt.m.get(name)!], [`v:${name}`, opt.v.get(name)!]);
  }
  return out;
}

function digest(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

/** Writes the checkpoint, keeping the one before it; returns why it could not be written when the disk is full. */
function saveCheckpoint(path: string, job: TrainJob, step: number, model: TransformerLM, opt: AdamW, curve: CurvePoint[]): string | undefined {
  const tensors = stateTensors(model, opt);
  let offset = 0;
  const entries = tensors.map(([key, t]) => {
    const e = { key, shape: t.shape, offset, size: t.size };
    offset += t.size;
    return e;
  });
  const data = new Float32Array(offset);
  for (const [i, [, t]] of tensors.entries()) data.set(t.dataSync() as Float32Array, entries[i].offset);
  const header: CheckpointHeader = { jobHash: jobHash(job), step, optimizerStep: opt.step, curve, tensors: entries };
  let json = Buffer.from(JSON.stringify(header));
  const pad = (4 - ((MAGIC.length + DIGEST_BYTES + 4 + json.length) % 4)) % 4; // keep the float32 data 4-byte aligned
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const body = Buffer.concat([len, json, Buffer.from(data.buffer)]);
  if (fs.existsSync(path)) fs.renameSync(path, previousCheckpointPath(path));
  try {
    writeFileAtomic(path, Buffer.concat([Buffer.from(MAGIC), digest(body), body]));
  } catch (err) {
    // A full disk loses this checkpoint, not the training: the previous one stays and the next one is tried again.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return `the disk is full (${code}): checkpoint at step ${step} not written; training goes on from memory, a restart would resume from the previous checkpoint`;
    throw err;
  }
  return undefined;
}

/** Why a checkpoint file cannot be used, or its header and data. */
function readCheckpoint(path: string, job: TrainJob): { header: CheckpointHeader; data: Float32Array } | string {
  const buf = fs.readFileSync(path);
  const bodyAt = MAGIC.length + DIGEST_BYTES;
  if (buf.length < bodyAt + 4 || buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return 'it is not an evoscale checkpoint of this format';
  const body = buf.subarray(bodyAt);
  if (!digest(body).equals(buf.subarray(MAGIC.length, bodyAt))) return 'its checksum does not match (the file is corrupt)';
  const len = body.readUInt32LE(0);
  const header = JSON.parse(body.subarray(4, 4 + len).toString()) as CheckpointHeader;
  if (header.jobHash !== jobHash(job)) return 'it belongs to a different training job';
  const data = new Float32Array(body.buffer.slice(body.byteOffset + 4 + len, body.byteOffset + body.length));
  return { header, data };
}

/**
 * Restores the latest usable checkpoint (the latest, else the one before it) into the model and
 * optimizer; each unusable one is reported through `warn` and skipped. Undefined: start from step 0.
 */
function loadCheckpoint(path: string, job: TrainJob, model: TransformerLM, opt: AdamW, warn: (message: string) => void): CheckpointHeader | undefined {
  const candidates = [path, previousCheckpointPath(path)].filter((p) => fs.existsSync(p));
  for (const [i, file] of candidates.entries()) {
    const read = readCheckpoint(file, job);
    const fallback = i + 1 < candidates.length ? 'falling back to the previous checkpoint' : 'starting from step 0';
    if (typeof read === 'string') {
      warn(`checkpoint ${file} cannot be used: ${read}; ${fallback}`);
      continue;
    }
    const byKey = new Map(read.header.tensors.map((e) => [e.key, e]));
    const state = stateTensors(model, opt);
    const missing = state.find(([key, t]) => byKey.get(key)?.shape.join(',') !== t.shape.join(','));
    if (missing) {
      warn(`checkpoint ${file} cannot be used: it has no matching tensor ${missing[0]}; ${fallback}`);
      continue;
    }
    for (const [key, t] of state) {
      const e = byKey.get(key)!;
      t.assign(tf.tensor(read.data.subarray(e.offset, e.offset + e.size), e.shape));
    }
    opt.step = read.header.optimizerStep;
    return read.header;
  }
  return undefined;
}

/** Mean validation loss over the first `evalTokens` tokens of the split, in fixed windows. */
function validationLoss(model: TransformerLM, val: Int32Array, job: TrainJob): number {
  const T = job.model.seqLen;
  const B = job.training.batchSize;
  const windows = Math.max(1, Math.min(Math.floor((val.length - 1) / T), Math.floor(job.training.evalTokens / T)));
  let total = 0;
  for (let w0 = 0; w0 < windows; w0 += B) {
    const n = Math.min(B, windows - w0);
    const ids = new Int32Array(n * T);
    const targets = new Int32Array(n * T);
    for (let b = 0; b < n; b++) {
      const start = (w0 + b) * T;
      ids.set(val.subarray(start, start + T), b * T);
      targets.set(val.subarray(start + 1, start + T + 1), b * T);
    }
    const loss = tf.tidy(() => model.loss(tf.tensor2d(ids, [n, T], 'int32'), tf.tensor2d(targets, [n, T], 'int32'), false, 0));
    total += (loss.dataSync()[0] as number) * n;
    loss.dispose();
  }
  return total / windows;
}

function checkFinite(value: number, what: string, step: number): void {
  if (!Number.isFinite(value)) throw new ProgramRejected(`training diverged: ${what} became ${value} at step ${step}`, 'divergence');
}

export async function trainOneSize(job: TrainJob, onProgress: (p: TrainProgress) => void = () => {}): Promise<TrainResult> {
  const started = Date.now();
  const backend: BackendInfo = await initBackend();
  const train = loadTokens(job.trainPath);
  const val = loadTokens(job.valPath);
  const T = job.model.seqLen;
  const { batchSize: B, steps, evalEvery, checkpointEvery } = job.training;
  if (train.length < T + 2 || val.length < T + 2) {
    throw new EvoError(`the corpus is too small for sequence length ${T} (train ${train.length}, validation ${val.length} tokens)`, 'DATA_TOO_SMALL');
  }

  const attention = compileAttention(job.block);
  const model = new TransformerLM(job.model, attention, job.seed, backend.gatherGrad, tensorApi(backend.name === 'wasm'));
  const params = model.variables();
  const opt = new AdamW(
    { beta1: job.training.beta1, beta2: job.training.beta2, eps: 1e-8, weightDecay: job.training.weightDecay, gradClip: job.training.gradClip },
    params,
  );
  try {
    const warn = (message: string) => onProgress({ event: 'warning', step: 0, steps, lr: 0, resumedFromStep: 0, message });
    const resumed = loadCheckpoint(job.checkpointPath, job, model, opt, warn);
    const resumedFromStep = resumed?.step ?? 0;
    const curve: CurvePoint[] = resumed?.curve ?? [];
    onProgress({ event: 'start', step: resumedFromStep, steps, lr: learningRateAt(resumedFromStep, job.training), resumedFromStep });

    const varList = params.map(([, v]) => v);
    const names = params.map(([n]) => n);
    let lastTrainLoss = NaN;
    let lastReport = 0;
    const curveEvery = Math.max(1, Math.floor(steps / 50));
    let stepMs = 0;
    let peakBytes = 0;
    for (let step = resumedFromStep; step < steps; step++) {
      const stepStarted = Date.now();
      const lr = learningRateAt(step, job.training);
      const { ids, targets } = trainingBatch(train, step, job.seed, B, T);
      const lossValue = tf.tidy(() => {
        const idsT = tf.tensor2d(ids, [B, T], 'int32');
        const tgtT = tf.tensor2d(targets, [B, T], 'int32');
        const { value, grads } = tf.variableGrads(() => {
          const loss = model.loss(idsT, tgtT, true, seedFor(job.seed, `dropout:${step}`) & 0xffff);
          peakBytes = Math.max(peakBytes, tf.memory().numBytes);
          return loss;
        }, varList);
        const byName: Record<string, tf.Tensor> = {};
        for (const [i, name] of names.entries()) {
          const g = grads[varList[i].name];
          if (!g) throw new ProgramRejected(`parameter ${name} received no gradient`, 'gradient');
          byName[name] = g;
        }
        opt.apply(byName, lr).dispose();
        return value.dataSync()[0] as number;
      });
      stepMs += Date.now() - stepStarted;
      lastTrainLoss = lossValue;
      checkFinite(lossValue, 'the training loss', step + 1);
      const done = step + 1;
      const isEval = done % evalEvery === 0 || done === steps;
      if (isEval) {
        const valLoss = validationLoss(model, val, job);
        checkFinite(valLoss, 'the validation loss', done);
        curve.push({ step: done, trainLoss: lossValue, valLoss });
        onProgress({ event: 'eval', step: done, steps, trainLoss: lossValue, valLoss, lr, resumedFromStep, tensors: tf.memory().numTensors });
      } else if (done % curveEvery === 0) {
        // Between evaluations the curve keeps the train loss, about 50 points a training, for reports.
        curve.push({ step: done, trainLoss: lossValue });
      }
      if (!isEval && Date.now() - lastReport > 1000) {
        lastReport = Date.now();
        onProgress({ event: 'step', step: done, steps, trainLoss: lossValue, lr, resumedFromStep });
      }
      if (checkpointEvery > 0 && done % checkpointEvery === 0 && done < steps) {
        const unwritten = saveCheckpoint(job.checkpointPath, job, done, model, opt, curve);
        if (unwritten) warn(unwritten);
        else onProgress({ event: 'checkpoint', step: done, steps, trainLoss: lossValue, lr, resumedFromStep });
      }
    }
    const last = curve[curve.length - 1];
    return {
      valLoss: last.valLoss!,
      finalTrainLoss: lastTrainLoss,
      steps,
      params: model.paramCounts(),
      backend: backend.name,
      curve,
      resumedFromStep,
      wallSeconds: (Date.now() - started) / 1000,
      msPerStep: stepMs / Math.max(1, steps - resumedFromStep),
      peakBytes,
    };
  } finally {
    opt.dispose();
    model.dispose();
  }
}
