// The traced attention graph: what a validated block computes at one training shape, as data. The
// torch engine interprets it and never runs candidate code. Imports nothing that loads tfjs, so the
// parent process can check, hash and store graphs without running a block.
import { createHash } from 'node:crypto';
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

export function shapeKey(s: TraceShape): string {
  return `b${s.batch}-t${s.seqLen}-d${s.dModel}-h${s.nHeads}`;
}
