// Reference values from tfjs for the torch engine's Python tests: kernel cases (forward and gradients
// on random inputs), every catalogue graph with its outputs and gradients, and 20-step training runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { recordBlock, replayGraph } from '../../trace/record';
import type { AttentionGraph, TraceShape } from '../../trace/graph';
import { compileAttention } from '../../core/program';
import { TransformerLM, type ModelConfig } from '../../evaluator/model';
import { tensorApi } from '../../evaluator/fast-matmul';
import { initBackend } from '../../evaluator/backend';
import { trainOneSize, type TrainingConfig } from '../../evaluator/train';
import { writeTokenFile } from '../../evaluator/data/token-file';
import { mulberry32 } from '../../core/random';

type Values = number[];
interface InputSpec {
  shape: number[];
  /** 'positive' keeps Log, Sqrt, Rsqrt and divisors away from zero. */
  range?: 'positive';
}
interface KernelCase {
  kernel: string;
  inputs: [string, InputSpec][];
  list?: true;
  attrs: Record<string, unknown>;
}

const unary = (kernel: string, range?: 'positive'): KernelCase => ({ kernel, inputs: [['x', { shape: [3, 4], range }]], attrs: {} });
const binary = (kernel: string, b: number[], range?: 'positive'): KernelCase => ({ kernel, inputs: [['a', { shape: [2, 3, 4] }], ['b', { shape: b, range }]], attrs: {} });

/** One or more cases per supported kernel, with the attributes tfjs's ops pass. */
export const KERNEL_CASES: KernelCase[] = [
  unary('Abs'), unary('Elu'), unary('Exp'), unary('Log', 'positive'), unary('Neg'), unary('Relu'), unary('Rsqrt', 'positive'),
  unary('Sigmoid'), unary('Softplus'), unary('Sqrt', 'positive'), unary('Square'), unary('Tanh'),
  binary('Add', [3, 1]), binary('Sub', [1, 4]), binary('Multiply', [3, 4]), binary('RealDiv', [3, 1], 'positive'),
  // tfjs sends no reduced gradient back to a broadcast operand of Maximum/Minimum: same shapes only.
  binary('Maximum', [2, 3, 4]), binary('Minimum', [2, 3, 4]),
  { kernel: 'BatchMatMul', inputs: [['a', { shape: [2, 3, 4] }], ['b', { shape: [2, 5, 4] }]], attrs: { transposeA: false, transposeB: true } },
  { kernel: 'BatchMatMul', inputs: [['a', { shape: [2, 4, 3] }], ['b', { shape: [2, 4, 5] }]], attrs: { transposeA: true, transposeB: false } },
  { kernel: 'BatchMatMul', inputs: [['a', { shape: [1, 3, 4] }], ['b', { shape: [1, 4, 2] }]], attrs: { transposeA: false, transposeB: false } },
  { kernel: 'Concat', inputs: [['0', { shape: [2, 3] }], ['1', { shape: [2, 2] }]], list: true, attrs: { axis: 1 } },
  { kernel: 'Cumsum', inputs: [['x', { shape: [2, 5] }]], attrs: { axis: 1, exclusive: false, reverse: false } },
  { kernel: 'Cumsum', inputs: [['x', { shape: [2, 5] }]], attrs: { axis: 1, exclusive: true, reverse: true } },
  { kernel: 'ExpandDims', inputs: [['input', { shape: [2, 3] }]], attrs: { dim: 1 } },
  { kernel: 'ExpandDims', inputs: [['input', { shape: [2, 3] }]], attrs: { dim: -1 } },
  { kernel: 'Max', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { reductionIndices: [-1], keepDims: true } },
  { kernel: 'Min', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { axis: 1, keepDims: false } },
  { kernel: 'Mean', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { axis: [1, 2], keepDims: false } },
  { kernel: 'Sum', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { axis: -1, keepDims: true } },
  { kernel: 'Reshape', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { shape: [6, -1] } },
  { kernel: 'Slice', inputs: [['x', { shape: [3, 5] }]], attrs: { begin: [1, 1], size: [2, 3] } },
  { kernel: 'Softmax', inputs: [['logits', { shape: [2, 5] }]], attrs: { dim: 1 } },
  { kernel: 'SplitV', inputs: [['x', { shape: [2, 6] }]], attrs: { numOrSizeSplits: [2, 4], axis: 1 } },
  { kernel: 'SplitV', inputs: [['x', { shape: [6, 2] }]], attrs: { numOrSizeSplits: 3, axis: 0 } },
  { kernel: 'Tile', inputs: [['x', { shape: [1, 3, 1] }]], attrs: { reps: [2, 1, 4] } },
  { kernel: 'Transpose', inputs: [['x', { shape: [2, 3, 4] }]], attrs: { perm: [0, 2, 1] } },
];

const values = (t: tf.Tensor): Values => Array.from(t.dataSync());

/** tf.tidy for a result that is plain data (tidy's own type wants tensors). */
function tidyData<T>(fn: () => T): T {
  let out!: T;
  tf.tidy(() => {
    out = fn();
  });
  return out;
}

function randomTensor(spec: InputSpec, rand: () => number): tf.Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = spec.range === 'positive' ? 0.5 + 1.5 * rand() : 4 * rand() - 2;
  return tf.tensor(v, spec.shape);
}

/** Forward and gradients of Σ outᵢ·rᵢ in tfjs for every kernel case. */
function kernelReferences(seed: number): unknown[] {
  const rand = mulberry32(seed);
  const engine = tf.engine();
  return KERNEL_CASES.map((c) => tidyData(() => {
    const xs = c.inputs.map(([, s]) => randomTensor(s, rand));
    const call = (...ts: tf.Tensor[]): tf.Tensor[] => {
      const named = c.list ? ts : Object.fromEntries(c.inputs.map(([name], i) => [name, ts[i]]));
      const r = engine.runKernel(c.kernel, named as never, c.attrs as never) as tf.Tensor | tf.Tensor[];
      return Array.isArray(r) ? r : [r];
    };
    const outs = call(...xs);
    const cot = outs.map((o) => randomTensor({ shape: o.shape }, rand));
    const grads = tf.grads((...ts: tf.Tensor[]) => tf.addN(call(...ts).map((o, i) => tf.sum(tf.mul(o, cot[i])))))(xs);
    return {
      kernel: c.kernel,
      list: c.list === true,
      attrs: c.attrs,
      inputs: c.inputs.map(([name], i) => ({ name, shape: xs[i].shape, values: values(xs[i]) })),
      outputs: outs.map((o) => ({ shape: o.shape, values: values(o) })),
      cotangents: cot.map(values),
      grads: grads.map(values),
    };
  }));
}

/** Each program's graph at `shape`, its tfjs output for the traced input and weights, and the gradients of Σ y·r. */
function graphReferences(programs: [string, string][], shape: TraceShape, seed: number): { graphs: unknown[]; kernels: Set<string> } {
  const kernels = new Set<string>();
  const graphs = programs.map(([id, block]) => {
    const run = recordBlock(compileAttention(block), shape, seed);
    try {
      run.graph.kernels.forEach((k) => kernels.add(k));
      const params = run.graph.params.map((p) => [p.name, run.store.vars.get(`${run.scope}.${p.name}`)!] as const);
      return tidyData(() => {
        const r = tf.randomNormal(run.x.shape, 0, 1, 'float32', seed + 7);
        const mask = tf.linalg.bandPart(tf.ones([shape.seqLen, shape.seqLen]), -1, 0);
        const f = (x: tf.Tensor, ...ps: tf.Tensor[]) => replayGraph(run.graph, x, mask, new Map(params.map(([n], i) => [n, ps[i]])));
        const y = f(run.x, ...params.map(([, v]) => v));
        const grads = tf.grads((x: tf.Tensor, ...ps: tf.Tensor[]) => tf.sum(tf.mul(f(x, ...ps), r)))([run.x, ...params.map(([, v]) => v)]);
        return {
          id,
          graph: run.graph,
          x: values(run.x),
          params: Object.fromEntries(params.map(([n, v]) => [n, values(v)])),
          cotangent: values(r),
          y: values(y),
          gradX: values(grads[0]),
          gradParams: Object.fromEntries(params.map(([n], i) => [n, values(grads[i + 1])])),
        };
      });
    } finally {
      run.x.dispose();
      run.mask.dispose();
      run.store.dispose();
    }
  });
  return { graphs, kernels };
}

/** Parameters in the tfjs checkpoint layout (EVOCKPT1: magic, header length, JSON header, float32 data). */
function writeWeights(file: string, named: [string, tf.Tensor][]): void {
  let offset = 0;
  const tensors = named.map(([name, t]) => {
    const e = { key: `param:${name}`, shape: t.shape, offset, size: t.size };
    offset += t.size;
    return e;
  });
  const data = new Float32Array(offset);
  named.forEach(([, t], i) => data.set(t.dataSync() as Float32Array, tensors[i].offset));
  let json = Buffer.from(JSON.stringify({ tensors }));
  json = Buffer.concat([json, Buffer.alloc((4 - ((12 + json.length) % 4)) % 4, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  fs.writeFileSync(file, Buffer.concat([Buffer.from('EVOCKPT1'), len, json, Buffer.from(data.buffer)]));
}

export const PARITY_MODEL: ModelConfig = { vocabSize: 64, seqLen: 8, dModel: 8, nLayers: 2, nHeads: 2, dropout: 0 };
export const PARITY_TRAINING: TrainingConfig = {
  steps: 20, batchSize: 4, learningRate: 1e-2, warmupSteps: 4, schedule: 'cosine', minLrRatio: 0.1, weightDecay: 0.1,
  beta1: 0.9, beta2: 0.95, gradClip: 1, evalEvery: 1, evalTokens: 24, checkpointEvery: 0,
};

/**
 * 20 tfjs training steps (the evaluator's own trainOneSize, validation after every step) per program,
 * with its initial weights exported for the torch engine.
 */
async function trainingReferences(dir: string, programs: [string, string][], seed: number): Promise<unknown[]> {
  const backend = await initBackend();
  const rand = mulberry32(seed);
  const tokens = (n: number) => Int32Array.from({ length: n }, () => Math.floor(rand() * PARITY_MODEL.vocabSize));
  const trainPath = path.join(dir, 'train.tok');
  const valPath = path.join(dir, 'val.tok');
  writeTokenFile(trainPath, tokens(2000), PARITY_MODEL.vocabSize);
  writeTokenFile(valPath, tokens(200), PARITY_MODEL.vocabSize);
  const shape: TraceShape = { batch: PARITY_TRAINING.batchSize, seqLen: PARITY_MODEL.seqLen, dModel: PARITY_MODEL.dModel, nHeads: PARITY_MODEL.nHeads };
  const out: unknown[] = [];
  for (const [id, block] of programs) {
    const run = recordBlock(compileAttention(block), shape, seed);
    const graphPath = path.join(dir, `${id}.graph.json`);
    fs.writeFileSync(graphPath, JSON.stringify(run.graph));
    run.x.dispose();
    run.mask.dispose();
    run.store.dispose();
    // The same seed gives trainOneSize these very initial weights: tfjs's seeded draws are deterministic.
    const model = new TransformerLM(PARITY_MODEL, compileAttention(block), seed, backend.gatherGrad, tensorApi(backend.name === 'wasm'));
    const weightsPath = path.join(dir, `${id}.init.ckpt`);
    writeWeights(weightsPath, model.variables());
    model.dispose();
    const result = await trainOneSize({
      block, model: PARITY_MODEL, training: PARITY_TRAINING, seed, trainPath, valPath, checkpointPath: path.join(dir, `${id}.tfjs.ckpt`),
    });
    out.push({
      id, graphPath, weightsPath, trainPath, valPath, model: PARITY_MODEL, training: PARITY_TRAINING, seed,
      trainLosses: result.curve.map((p) => p.trainLoss), valLosses: result.curve.map((p) => p.valLoss),
    });
  }
  return out;
}

export interface EngineFixtures {
  file: string;
  /** Kernels the traced programs use (all of them). */
  usedKernels: Set<string>;
  graphs: AttentionGraph[];
}

/** Writes every reference to `dir`/fixtures.json for the Python tests to read. */
export async function writeEngineFixtures(dir: string, programs: [string, string][], parityPrograms: [string, string][], supported: readonly string[]): Promise<EngineFixtures> {
  await initBackend();
  const seed = 1234;
  const kernels = kernelReferences(seed);
  const { graphs, kernels: usedKernels } = graphReferences(programs, { batch: 2, seqLen: 8, dModel: 8, nHeads: 2 }, seed);
  const training = await trainingReferences(dir, parityPrograms, seed);
  const file = path.join(dir, 'fixtures.json');
  fs.writeFileSync(file, JSON.stringify({ supported, kernels, graphs, training }));
  return { file, usedKernels, graphs: (graphs as { graph: AttentionGraph }[]).map((g) => g.graph) };
}
