// The traced attention graph: what a validated block computes at one training shape, as data. The
// torch engine interprets it and never runs candidate code. Imports nothing that loads tfjs, so the
// parent process can check, hash and store graphs without running a block.
import { createHash } from 'node:crypto';
import { cacheDir } from '../core/paths';
import type { ParamInit } from '../evaluator/attention-context';

export const GRAPH_FORMAT = 'evoscale-attention-graph/1';

/**
 * tfjs kernels the torch engine implements (engine/evoscale_engine/kernels.py). A block whose graph
 * needs any other kernel outside a folded constant is refused with that kernel's name.
 */
export const SUPPORTED_KERNELS = [
  'Abs', 'Add', 'BatchMatMul', 'Concat', 'Cumsum', 'Elu', 'Exp', 'ExpandDims', 'Log', 'Max', 'Maximum', 'Mean', 'Min',
  'Minimum', 'Multiply', 'Neg', 'RealDiv', 'Relu', 'Reshape', 'Rsqrt', 'Sigmoid', 'Slice', 'Softmax', 'Softplus',
  'SplitV', 'Sqrt', 'Square', 'Sub', 'Sum', 'Tanh', 'Tile', 'Transpose',
] as const;

export interface TraceShape {
  batch: number;
  seqLen: number;
  dModel: number;
  nHeads: number;
}

/** A value in the graph: output `index` of node `node`. */
export type Ref = [node: number, index: number];

export type DType = 'float32' | 'int32' | 'bool';

export interface TensorSpec {
  shape: number[];
  dtype: DType;
}

export type GraphNode =
  | { op: 'Input'; name: 'x' | 'causalMask'; out: TensorSpec }
  | { op: 'Param'; name: string; init: ParamInit; out: TensorSpec }
  /** A folded constant: little-endian float32 / int32 / uint8 (bool) values in base64. */
  | { op: 'Const'; data: string; out: TensorSpec }
  | {
      op: 'Kernel';
      kernel: string;
      /** Named inputs in the order tfjs passed them; `list` when tfjs passed an array (Concat, Pack). */
      inputs: [string, Ref][];
      list?: true;
      attrs: Record<string, unknown>;
      outs: TensorSpec[];
    };

export interface AttentionGraph {
  format: typeof GRAPH_FORMAT;
  shape: TraceShape;
  /** Nodes in execution order; a Ref only points backwards. */
  nodes: GraphNode[];
  output: Ref;
  /** Every parameter the block created, used or not: the model holds (and decays) them all. */
  params: { name: string; node: number }[];
  /** Kernel names the graph uses, sorted. */
  kernels: string[];
  /** sha256 (16 hex digits) of the graph without this field: its content address. */
  hash: string;
}

export function graphHash(graph: Omit<AttentionGraph, 'hash'>): string {
  const { format, shape, nodes, output, params, kernels } = graph;
  return createHash('sha256').update(JSON.stringify({ format, shape, nodes, output, params, kernels })).digest('hex').slice(0, 16);
}

/** The state folder's graphs by hash: torch trainings store theirs here, run archives copy from here. */
export function graphStoreDir(): string {
  return cacheDir('graphs');
}

export function shapeKey(s: TraceShape): string {
  return `b${s.batch}-t${s.seqLen}-d${s.dModel}-h${s.nHeads}`;
}

const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every((n) => Number.isInteger(n) && n >= 0);
const isSpec = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && isShape((v as TensorSpec).shape) && ['float32', 'int32', 'bool'].includes((v as TensorSpec).dtype);

/**
 * Checks a graph that came out of a process which ran untrusted code, before anything stores or
 * interprets it: the format, the shape it was traced at, its hash, backward-only references, the
 * supported kernels and the (B, T, D) float32 output. Throws with one line on the first problem.
 */
export function checkGraph(raw: unknown, shape: TraceShape): AttentionGraph {
  const fail = (why: string): never => {
    throw new Error(`traced graph for ${shapeKey(shape)}: ${why}`);
  };
  const g = raw as AttentionGraph;
  if (typeof g !== 'object' || g === null || g.format !== GRAPH_FORMAT) fail(`not a ${GRAPH_FORMAT} graph`);
  if (shapeKey(g.shape ?? ({} as TraceShape)) !== shapeKey(shape)) fail(`traced at ${JSON.stringify(g.shape)}, not at this shape`);
  if (!Array.isArray(g.nodes) || !Array.isArray(g.params) || !Array.isArray(g.kernels)) fail('nodes, params or kernels missing');
  const supported = new Set<string>(SUPPORTED_KERNELS);
  const outs: TensorSpec[][] = [];
  const ref = (r: unknown, at: number): TensorSpec => {
    const [n, k] = Array.isArray(r) ? (r as number[]) : [];
    if (!Number.isInteger(n) || n < 0 || n >= at || !Number.isInteger(k) || !outs[n][k]) fail(`node ${at} refers to a missing value ${JSON.stringify(r)}`);
    return outs[n][k];
  };
  g.nodes.forEach((node, i) => {
    if (node.op === 'Kernel') {
      if (!supported.has(node.kernel)) fail(`kernel ${node.kernel} is not supported by the torch engine`);
      if (!Array.isArray(node.inputs) || !Array.isArray(node.outs) || !node.outs.every(isSpec)) fail(`node ${i} is malformed`);
      for (const [, r] of node.inputs) ref(r, i);
      outs.push(node.outs);
    } else if (node.op === 'Input' || node.op === 'Param' || node.op === 'Const') {
      if (!isSpec(node.out)) fail(`node ${i} is malformed`);
      if (node.op === 'Const' && typeof node.data !== 'string') fail(`constant ${i} has no data`);
      outs.push([node.out]);
    } else {
      fail(`node ${i} has unknown op ${JSON.stringify((node as { op?: unknown }).op)}`);
    }
  });
  const out = ref(g.output, g.nodes.length);
  if (out.dtype !== 'float32' || out.shape.join(',') !== [shape.batch, shape.seqLen, shape.dModel].join(',')) fail(`output is ${out.dtype} (${out.shape}), not float32 (${shape.batch}, ${shape.seqLen}, ${shape.dModel})`);
  for (const p of g.params) if (g.nodes[p.node]?.op !== 'Param') fail(`parameter ${p.name} points at no Param node`);
  if (graphHash(g) !== g.hash) fail('its hash does not match its content');
  return g;
}
