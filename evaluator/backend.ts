// Picks the tensor backend a process trains on: the best one installed that works, in the order
// tfjs-node-gpu, tfjs-node, WebAssembly, plain JS — or the one EVOSCALE_BACKEND names.
// Native backends are optional extras: loaded when present, never required.
import * as tf from '@tensorflow/tfjs';
import { EvoError } from '../core/errors';

export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number] | 'auto';

export interface BackendInfo {
  /** What was chosen: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu'. */
  name: (typeof BACKENDS)[number];
  /** tfjs's own backend name after initialisation. */
  tfBackend: string;
  /** Whether gather has a gradient here (the wasm backend lacks UnsortedSegmentSum). */
  gatherGrad: boolean;
}

function tryRequire(mod: string): boolean {
  try {
    require(mod);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: (typeof BACKENDS)[number]): Promise<boolean> {
  switch (name) {
    case 'tensorflow-gpu':
      if (!tryRequire('@tensorflow/tfjs-node-gpu')) return false;
      return tf.setBackend('tensorflow');
    case 'tensorflow':
      if (!tryRequire('@tensorflow/tfjs-node')) return false;
      return tf.setBackend('tensorflow');
    case 'wasm':
      if (!tryRequire('@tensorflow/tfjs-backend-wasm')) return false;
      return tf.setBackend('wasm');
    case 'cpu':
      return tf.setBackend('cpu');
  }
}

let active: BackendInfo | undefined;

export function parseBackendChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if (v === 'auto' || (BACKENDS as readonly string[]).includes(v)) return v as BackendChoice;
  throw new EvoError(`unknown backend "${v}" (expected auto, ${BACKENDS.join(', ')})`, 'BAD_BACKEND');
}

/** Initialise once per process. `auto` takes the first backend that loads and initialises. */
export async function initBackend(choice: BackendChoice = parseBackendChoice(process.env.EVOSCALE_BACKEND)): Promise<BackendInfo> {
  if (active) return active;
  const order = choice === 'auto' ? BACKENDS : [choice];
  for (const name of order) {
    let ok = false;
    try {
      ok = await activate(name);
      if (ok) await tf.ready();
    } catch {
      ok = false;
    }
    if (ok) {
      const tfBackend = tf.getBackend();
      active = { name, tfBackend, gatherGrad: tf.getKernel('UnsortedSegmentSum', tfBackend) !== undefined };
      return active;
    }
  }
  throw new EvoError(
    choice === 'auto'
      ? 'no tensor backend could be initialised'
      : `backend "${choice}" is not available here (is its package installed?); use EVOSCALE_BACKEND=auto`,
    'NO_BACKEND',
  );
}

/**
 * Whether a native tensor backend (a Node addon) is installed. The training sandbox must then
 * allow addons, and its native-memory limit would trip on GPU drivers' large mappings.
 */
export function nativeBackendInstalled(): boolean {
  for (const mod of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(mod);
      return true;
    } catch {
      // not installed
    }
  }
  return false;
}

/**
 * Tensor bytes per logit (batch × tokens × vocabulary) at the peak of a tfjs training step: the
 * logits, their softmax and gradients, in several copies. Measured: the full profile's d96-L4-H4 at
 * batch 16 × 128 tokens × 16,384 ids peaked at 2,104 MiB, 66 bytes a logit; at batch 32 the wasm
 * heap aborted.
 */
const TFJS_BYTES_PER_LOGIT = 66;
/** What a tfjs-wasm heap holds in practice: wasm32 addresses 4 GiB, and allocations fail before that. */
const WASM_HEAP_BYTES = 3 * 2 ** 30;

/**
 * Why tfjs on wasm cannot train this shape (one line naming the fix), or null when it fits. The
 * check runs before a training starts: past the heap, wasm fails with "memory access out of bounds"
 * or "Aborted()" midway, which says nothing about the cause.
 */
export function wasmCapacityProblem(size: string, batch: number, seqLen: number, vocab: number): string | null {
  const bytes = TFJS_BYTES_PER_LOGIT * batch * seqLen * vocab;
  if (bytes <= WASM_HEAP_BYTES) return null;
  const gib = (x: number) => (x / 2 ** 30).toFixed(1);
  return (
    `tfjs on wasm cannot train ${size} at batch ${batch} × ${seqLen} tokens × ${vocab.toLocaleString('en-US')} ids: a step needs about ` +
    `${gib(bytes)} GiB of tensors and the wasm heap holds ${gib(WASM_HEAP_BYTES)} GiB; train this profile on the torch engine (EVOSCALE_ENGINE=torch) or a native tfjs backend`
  );
}

/** Whether a training in this process tree would run tfjs on wasm (no native backend, and `auto` or `wasm` chosen). */
export function trainsOnWasm(backendChoice: string | undefined, native = nativeBackendInstalled()): boolean {
  const choice = parseBackendChoice(backendChoice);
  return !native && (choice === 'auto' || choice === 'wasm');
}
