// Counted work of tfjs code: every kernel the engine runs while `fn` runs, with its floating-point
// operations and the bytes of its outputs, the way a tracer would count them. Unlike a wall-clock time,
// the count is the same on an idle and on a busy machine. Runs inside the validation sandbox only.
import * as tf from '@tensorflow/tfjs';

export interface WorkCount {
  /** Kernel calls (forward and backward ops alike). */
  calls: number;
  /** Floating-point operations: 2·B·M·N·K per matmul, the input size per reduction, the output size otherwise. */
  flops: number;
  /** Bytes of the kernels' outputs (what they allocate and write). */
  bytes: number;
}

/**
 * One kernel call (or tensor creation) counts as this many floating-point operations: on the wasm backend
 * a dispatch (argument checks, allocation, bookkeeping, gradient tape) takes about 10 µs, as long as about
 * 10,000 operations of a matmul. Without it, a block that runs thousands of tiny ops (a loop over pairs
 * of positions) would count as cheap at the small shapes validation runs at.
 */
export const FLOPS_PER_CALL = 10_000;

/** Kernels that only relabel a tensor's shape or dtype-free view: no arithmetic, no copy on wasm. */
const VIEWS = new Set(['Reshape', 'ExpandDims', 'Squeeze', 'Identity']);
/** Kernels whose work scales with their input, not their (smaller) output. */
const REDUCTIONS = new Set([
  'Sum', 'Mean', 'Max', 'Min', 'Prod', 'All', 'Any', 'ArgMax', 'ArgMin', 'Softmax', 'LogSoftmax',
  'Cumsum', 'Cumprod', 'EuclideanNorm', 'TopK', 'Unique',
]);

type Inputs = Record<string, tf.Tensor | undefined> | tf.Tensor[] | undefined;
type Attrs = Record<string, unknown> | undefined;

function tensorsOf(v: unknown): tf.Tensor[] {
  if (v instanceof tf.Tensor) return [v];
  if (Array.isArray(v)) return v.flatMap(tensorsOf);
  if (typeof v === 'object' && v !== null) return Object.values(v).flatMap(tensorsOf);
  return [];
}

const sizeOf = (ts: tf.Tensor[]): number => ts.reduce((n, t) => n + t.size, 0);

/** Floating-point operations of one kernel call. */
export function kernelFlops(name: string, inputs: Inputs, attrs: Attrs, outputs: tf.Tensor[]): number {
  const out = sizeOf(outputs);
  const ins = inputs === undefined ? [] : tensorsOf(inputs);
  if (name === 'BatchMatMul' || name === '_FusedMatMul') {
    const a = (inputs as Record<string, tf.Tensor | undefined>).a;
    const k = a === undefined ? 1 : a.shape[attrs?.transposeA ? a.rank - 2 : a.rank - 1] ?? 1;
    return 2 * out * k + (name === '_FusedMatMul' ? out : 0);
  }
  if (name === 'Conv2D' || name === 'Conv2DBackpropInput' || name === 'Conv2DBackpropFilter' || name === 'DepthwiseConv2dNative' || name === 'FusedConv2D') {
    const filter = (inputs as Record<string, tf.Tensor | undefined>).filter;
    const window = filter === undefined ? 1 : filter.size / Math.max(1, filter.shape[filter.rank - 1] ?? 1);
    return 2 * out * window;
  }
  if (VIEWS.has(name)) return 0;
  if (REDUCTIONS.has(name)) return Math.max(sizeOf(ins), out);
  return out;
}

/** Runs `fn` with every kernel call the engine dispatches counted (forward ops and gradient ops alike). */
export function countWork(fn: () => void): WorkCount {
  type Engine = { runKernel: (...args: unknown[]) => unknown; makeTensor: (...args: unknown[]) => unknown };
  const engine = tf.engine() as unknown as Engine;
  const count: WorkCount = { calls: 0, flops: 0, bytes: 0 };
  const add = (outputs: tf.Tensor[], flops: number): void => {
    count.calls++;
    count.flops += flops;
    for (const t of outputs) count.bytes += t.size * (t.dtype === 'complex64' ? 8 : 4);
  };
  const restore: (() => void)[] = [];
  const wrap = (key: keyof Engine, counted: (original: Engine[typeof key]) => Engine[typeof key]): void => {
    const own = Object.prototype.hasOwnProperty.call(engine, key);
    const original = engine[key];
    engine[key] = counted(original);
    restore.push(() => {
      if (own) engine[key] = original;
      else delete (engine as Partial<Engine>)[key];
    });
  };
  wrap('runKernel', (original) => function counted(this: unknown, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    const outputs = tensorsOf(result);
    add(outputs, kernelFlops(String(args[0]), args[1] as Inputs, args[2] as Attrs, outputs));
    return result;
  });
  // tf.zeros, tf.ones, tf.tensor and friends fill a new tensor without a kernel.
  wrap('makeTensor', (original) => function counted(this: unknown, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    const outputs = tensorsOf(result);
    add(outputs, sizeOf(outputs));
    return result;
  });
  try {
    fn();
  } finally {
    for (const undo of restore.reverse()) undo();
  }
  return count;
}

/** The counted cost in floating-point-operation equivalents. */
export function workCost(w: WorkCount): number {
  return w.flops + FLOPS_PER_CALL * w.calls;
}
