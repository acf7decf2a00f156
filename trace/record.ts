// Records a validated block at one training shape as a kernel graph by wrapping tfjs's kernel
// dispatch (engine.runKernel), folds constant subgraphs, refuses value-dependent graphs and replays
// the graph to prove it. Runs candidate code: call only inside the sandbox (sandbox/trace-child.ts).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { AttentionContext, AttentionFn, ParamInit, Tensor } from '../evaluator/attention-context';
import { attentionContext, causalMask, ParamStore } from '../evaluator/attention-runtime';
import { oneLine, ProgramRejected } from '../core/errors';
import { compileAttention } from '../core/program';
import { GRAPH_FORMAT, graphHash, SUPPORTED_KERNELS, type AttentionGraph, type DType, type GraphNode, type Ref, type TensorSpec, type TraceShape } from './graph';

/** Each recording scopes its weights apart: tfjs variable names are global to the process. */
let recordings = 0;
const SUPPORTED = new Set<string>(SUPPORTED_KERNELS);
/** Methods that copy tensor values to JavaScript: a block calling one on a traced value branches on data. */
const READ_METHODS = ['dataSync', 'data', 'arraySync', 'array', 'bufferSync', 'buffer'] as const;

type Engine = ReturnType<typeof tf.engine>;
type RunKernel = Engine['runKernel'];

function spec(t: Tensor): TensorSpec {
  return { shape: [...t.shape], dtype: t.dtype as DType };
}

function encodeValues(t: Tensor): string {
  const values = t.dataSync();
  if (t.dtype === 'float32') return Buffer.from(new Float32Array(values as Float32Array).buffer).toString('base64');
  if (t.dtype === 'int32') return Buffer.from(new Int32Array(values as Int32Array).buffer).toString('base64');
  if (t.dtype === 'bool') return Buffer.from(new Uint8Array(values as Uint8Array).buffer).toString('base64');
  throw new ProgramRejected(`trace: a constant of dtype ${t.dtype} has no engine equivalent`, 'trace');
}

export function decodeValues(data: string, out: TensorSpec): Float32Array | Int32Array | Uint8Array {
  const bytes = Buffer.from(data, 'base64');
  const copy = new Uint8Array(bytes).buffer; // aligned copy for the typed views
  if (out.dtype === 'float32') return new Float32Array(copy);
  if (out.dtype === 'int32') return new Int32Array(copy);
  return new Uint8Array(copy);
}

/** Attributes must be plain JSON (numbers, strings, booleans, arrays); anything else cannot cross to Python. */
function plainAttrs(kernel: string, attrs: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (attrs === undefined || attrs === null) return out;
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>)) {
    if (v === undefined) continue;
    const ok = (w: unknown): boolean =>
      w === null || typeof w === 'boolean' || typeof w === 'string' || (typeof w === 'number' && Number.isFinite(w)) || (Array.isArray(w) && w.every(ok));
    if (!ok(v)) throw new ProgramRejected(`trace: kernel ${kernel} has attribute ${k} that is not plain data`, 'trace');
    out[k] = v;
  }
  return out;
}

interface Source {
  ref: Ref;
  /** Whether the value is folded to data: it comes from literals alone (no path from x, the mask or a parameter). */
  constant: boolean;
  /** Whether the block may read it back: a constant or the mask, which are the same for every input at this shape. */
  readable: boolean;
  tensor: Tensor;
}

/** One recording: the nodes so far and which tensor (by id) each node output is. */
class Recorder {
  readonly nodes: GraphNode[] = [];
  readonly byId = new Map<number, Source>();
  readonly params: { name: string; node: number }[] = [];
  /** >0 while ctx.param creates a weight or tfjs dispatches a kernel from inside another kernel. */
  paused = 0;

  add(node: GraphNode): number {
    this.nodes.push(node);
    return this.nodes.length - 1;
  }

  input(name: 'x' | 'causalMask', t: Tensor): void {
    const node = this.add({ op: 'Input', name, out: spec(t) });
    this.byId.set(t.id, { ref: [node, 0], constant: false, readable: name === 'causalMask', tensor: t });
  }

  param(name: string, init: ParamInit, v: Tensor): void {
    if (this.byId.has(v.id)) return;
    const node = this.add({ op: 'Param', name, init, out: spec(v) });
    this.params.push({ name, node });
    this.byId.set(v.id, { ref: [node, 0], constant: false, readable: false, tensor: v });
  }

  /** A tensor no recorded kernel produced (a scalar from `tf.mul(t, 0.5)`, `tf.tensor(…)`): a constant by value. */
  source(t: Tensor): Source {
    const known = this.byId.get(t.id);
    if (known) return known;
    const node = this.add({ op: 'Const', data: encodeValues(t), out: spec(t) });
    const s = { ref: [node, 0] as Ref, constant: true, readable: true, tensor: t };
    this.byId.set(t.id, s);
    return s;
  }

  kernel(kernel: string, inputs: unknown, attrs: unknown, result: Tensor | Tensor[]): void {
    const outs = Array.isArray(result) ? result : [result];
    const list = Array.isArray(inputs);
    const named = Object.entries((inputs ?? {}) as Record<string, Tensor | undefined>).filter(([, t]) => t !== undefined && t !== null) as [string, Tensor][];
    const sources = named.map(([name, t]) => [name, this.source(t)] as const);
    if (sources.every(([, s]) => s.constant)) {
      // Folded: the value is fixed for this shape, so the engine gets it as data whatever kernel made it.
      for (const t of outs) this.byId.set(t.id, { ref: [this.add({ op: 'Const', data: encodeValues(t), out: spec(t) }), 0], constant: true, readable: true, tensor: t });
      return;
    }
    if (!SUPPORTED.has(kernel)) {
      throw new ProgramRejected(`trace: the block uses kernel ${kernel}, which the torch engine does not implement`, 'trace');
    }
    const node = this.add({
      op: 'Kernel',
      kernel,
      inputs: sources.map(([name, s]) => [name, s.ref]),
      ...(list ? { list: true as const } : {}),
      attrs: plainAttrs(kernel, attrs),
      outs: outs.map(spec),
    });
    const readable = sources.every(([, s]) => s.readable);
    outs.forEach((t, i) => this.byId.set(t.id, { ref: [node, i], constant: false, readable, tensor: t }));
  }
}

/** Runs `fn` with every kernel call recorded and every read of a traced value refused. */
function recording<R>(rec: Recorder, fn: () => R): R {
  const engine = tf.engine();
  const runKernel: RunKernel = engine.runKernel;
  const proto = tf.Tensor.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const reads = READ_METHODS.map((m) => [m, proto[m]] as const);
  let depth = 0;
  engine.runKernel = function (this: Engine, kernelName: string, inputs: unknown, attrs?: unknown) {
    if (rec.paused > 0 || depth > 0) return runKernel.call(this, kernelName, inputs as never, attrs as never);
    depth++;
    let result: Tensor | Tensor[];
    try {
      result = runKernel.call(this, kernelName, inputs as never, attrs as never) as Tensor | Tensor[];
    } finally {
      depth--;
    }
    rec.paused++;
    try {
      rec.kernel(kernelName, inputs, attrs, result);
    } finally {
      rec.paused--;
    }
    return result;
  } as RunKernel;
  for (const [m, original] of reads) {
    proto[m] = function (this: Tensor, ...args: unknown[]) {
      const s = rec.paused > 0 ? undefined : rec.byId.get(this.id);
      if (s && !s.readable) {
        throw new ProgramRejected(`trace: the block reads tensor values with ${m}(), so its graph would depend on the data`, 'trace');
      }
      return original.apply(this, args);
    };
  }
  try {
    return fn();
  } finally {
    engine.runKernel = runKernel;
    for (const [m, original] of reads) proto[m] = original;
  }
}

/** The ctx a traced block sees: the real one, with every parameter recorded with its init spec. */
function tracingContext(rec: Recorder, base: AttentionContext): AttentionContext {
  return Object.freeze({
    dModel: base.dModel,
    nHeads: base.nHeads,
    headDim: base.headDim,
    seqLen: base.seqLen,
    causalMask: base.causalMask,
    param: (name: string, shape: number[], init: ParamInit = 'glorot') => {
      rec.paused++;
      let v;
      try {
        v = base.param(name, shape, init);
      } finally {
        rec.paused--;
      }
      rec.param(name, init, v);
      return v;
    },
  });
}

/** Drops nodes the output does not reach (parameters stay: the model holds them all) and renumbers. */
function prune(nodes: GraphNode[], output: Ref, params: { name: string; node: number }[]): { nodes: GraphNode[]; output: Ref; params: { name: string; node: number }[] } {
  const live = new Set<number>([output[0], ...params.map((p) => p.node)]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (live.has(i) && n.op === 'Kernel') for (const [, [src]] of n.inputs) live.add(src);
  }
  const renumber = new Map<number, number>();
  const kept: GraphNode[] = [];
  nodes.forEach((n, i) => {
    if (!live.has(i)) return;
    renumber.set(i, kept.length);
    kept.push(n.op === 'Kernel' ? { ...n, inputs: n.inputs.map(([name, [src, k]]) => [name, [renumber.get(src)!, k]]) } : n);
  });
  return {
    nodes: kept,
    output: [renumber.get(output[0])!, output[1]],
    params: params.map((p) => ({ name: p.name, node: renumber.get(p.node)! })),
  };
}

export interface TraceRun {
  graph: AttentionGraph;
  /** The block's own output, for the replay check. */
  output: Float32Array;
  x: Tensor;
  mask: Tensor;
  store: ParamStore;
  /** The scope the block's weights were created under (`${scope}.${name}`). */
  scope: string;
}

/** Executes the block once at `shape` under the recorder. The caller disposes x, mask and store. */
export function recordBlock(fn: AttentionFn, shape: TraceShape, seed: number): TraceRun {
  const { batch: B, seqLen: T, dModel: D, nHeads: H } = shape;
  const store = new ParamStore(seed);
  const mask = tf.keep(causalMask(T));
  const x = tf.keep(tf.randomNormal([B, T, D], 0, 1, 'float32', seed));
  const rec = new Recorder();
  const scope = `trace${recordings++}`;
  rec.input('x', x);
  // The mask is fixed for a shape but stays an input, never folded: the engine builds it, so no T² values travel.
  rec.input('causalMask', mask);
  const ctx = tracingContext(rec, attentionContext(store, scope, { dModel: D, nHeads: H, seqLen: T }, mask));
  let y: unknown;
  const dispose = () => {
    x.dispose();
    mask.dispose();
    store.dispose();
  };
  let output: Float32Array;
  try {
    output = tf.tidy(() => {
      try {
        y = recording(rec, () => fn(tf as never, ctx, x));
      } catch (err) {
        if (err instanceof ProgramRejected) throw err;
        throw new ProgramRejected(`trace: the block threw at shape (${B}, ${T}, ${D}) with ${H} heads: ${oneLine(err)}`, 'trace');
      }
      if (!(y instanceof tf.Tensor) || y.shape.join(',') !== [B, T, D].join(',') || y.dtype !== 'float32') {
        throw new ProgramRejected(`trace: the block must return a float32 tensor of shape (${B}, ${T}, ${D})`, 'trace');
      }
      return (y as Tensor).dataSync() as Float32Array;
    });
  } catch (err) {
    dispose();
    throw err;
  }
  const out = rec.byId.get((y as Tensor).id);
  if (!out || out.constant) {
    dispose();
    throw new ProgramRejected('trace: the block\'s output does not depend on its input or parameters', 'trace');
  }
  const pruned = prune(rec.nodes, out.ref, rec.params);
  const kernels = [...new Set(pruned.nodes.flatMap((n) => (n.op === 'Kernel' ? [n.kernel] : [])))].sort();
  const body = { format: GRAPH_FORMAT as typeof GRAPH_FORMAT, shape, nodes: pruned.nodes, output: pruned.output, params: pruned.params, kernels };
  return { graph: { ...body, hash: graphHash(body) }, output, x, mask, store, scope };
}

/**
 * Runs a graph with tfjs's own kernels: the check that the graph is the block, and the reference the
 * engine's kernel tests compare against. `params` by the block's parameter name.
 */
export function replayGraph(graph: AttentionGraph, x: Tensor, mask: Tensor, params: Map<string, Tensor>): Tensor {
  const engine = tf.engine();
  const values: Tensor[][] = [];
  for (const node of graph.nodes) {
    switch (node.op) {
      case 'Input':
        values.push([node.name === 'x' ? x : mask]);
        break;
      case 'Param': {
        const p = params.get(node.name);
        if (!p) throw new Error(`replay: no value for parameter ${node.name}`);
        values.push([p]);
        break;
      }
      case 'Const':
        values.push([tf.tensor(decodeValues(node.data, node.out), node.out.shape, node.out.dtype)]);
        break;
      case 'Kernel': {
        const args = node.inputs.map(([name, [src, k]]) => [name, values[src][k]] as const);
        const inputs = node.list ? args.map(([, t]) => t) : Object.fromEntries(args);
        const r = engine.runKernel(node.kernel, inputs as never, node.attrs as never) as Tensor | Tensor[];
        values.push(Array.isArray(r) ? r : [r]);
        break;
      }
    }
  }
  return values[graph.output[0]][graph.output[1]];
}

/** The default seed of a trace's trial weights and input. */
export const TRACE_SEED = 1234;

export interface TraceRequest {
  block: string;
  shapes: TraceShape[];
  /** Seeds the block's trial weights and input (default TRACE_SEED); a second trace with seed+1 must give the same graph. */
  seed?: number;
}

export interface TraceOutcome {
  graphs: AttentionGraph[];
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/**
 * The block's graph at one shape: recorded twice (two inputs and weight draws) and compared, then replayed
 * with tfjs's kernels and compared bit for bit. A refusal is a ProgramRejected with check 'trace'.
 */
export function traceAtShape(fn: AttentionFn, shape: TraceShape, seed: number): AttentionGraph {
  const first = recordBlock(fn, shape, seed);
  let second: TraceRun | undefined;
  try {
    second = recordBlock(fn, shape, seed + 1);
    if (second.graph.hash !== first.graph.hash) {
      throw new ProgramRejected(`trace: the block's kernel graph changes with its input values at shape (${shape.batch}, ${shape.seqLen}, ${shape.dModel}), so it depends on the data`, 'trace');
    }
    const params = new Map(first.graph.params.map((p) => [p.name, first.store.vars.get(`${first.scope}.${p.name}`)! as Tensor]));
    const replayed = tf.tidy(() => replayGraph(first.graph, first.x, first.mask, params).dataSync() as Float32Array);
    if (!sameBits(replayed, first.output)) {
      throw new ProgramRejected('trace: replaying the recorded graph does not reproduce the block\'s output exactly', 'trace');
    }
    return first.graph;
  } finally {
    for (const run of second ? [first, second] : [first]) {
      run.x.dispose();
      run.mask.dispose();
      run.store.dispose();
    }
  }
}

/** The block compiled for tracing; a top-level throw is the trace's refusal. */
export function compileForTrace(block: string): AttentionFn {
  try {
    return compileAttention(block);
  } catch (err) {
    if (err instanceof ProgramRejected) throw err;
    throw new ProgramRejected(`trace: the block's top-level code threw: ${oneLine(err)}`, 'trace');
  }
}

/** Traces a block at every shape (traceAtShape), on the wasm backend. */
export async function traceBlock(req: TraceRequest): Promise<TraceOutcome> {
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend could not be initialised');
  await tf.ready();
  const fn = compileForTrace(req.block);
  return { graphs: req.shapes.map((shape) => traceAtShape(fn, shape, req.seed ?? TRACE_SEED)) };
}
