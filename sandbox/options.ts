// What a caller hands runInSandbox (run.ts) and the error it gets back when the sandboxed task fails.
// Kept apart so isolation.ts and run.ts can both use them without importing each other.
import { EvoError, type ErrorFault } from '../core/errors';

export interface SandboxOptions {
  /** Absolute path of a compiled .js entry that calls serveSandboxedTask. */
  script: string;
  /** JSON-serialisable, delivered to the handler. */
  input: unknown;
  /** The only writable place besides writePaths (created if missing); the child's cwd. */
  scratchDir: string;
  /** Extra readable paths (a data cache, a checkpoint dir) besides the repo's dist/, node_modules/, frameworks/. */
  readPaths?: string[];
  /** Extra writable (and readable) paths, e.g. a checkpoint dir; created if missing. */
  writePaths?: string[];
  /** Hard kill (SIGKILL of the whole process group) when exceeded. */
  wallTimeoutMs: number;
  /** Memory limit in MB: V8 heap cap, RLIMIT_DATA (native and wasm memory) and a resident-size watchdog. */
  memoryMb?: number;
  /**
   * Apply memoryMb as RLIMIT_DATA too (default true). Set false for native GPU backends whose drivers
   * map large private regions up front; the heap cap and the resident-size watchdog still apply.
   */
  limitNativeMemory?: boolean;
  /** Let the child load native addons (tfjs-node, tfjs-node-gpu, webgpu). Off by default. */
  allowAddons?: boolean;
  /** Progress messages from the child. */
  onMessage?: (msg: unknown) => void;
  /** Explicit extra environment (CUDA_VISIBLE_DEVICES, EVOSCALE_BACKEND…); nothing else is inherited. */
  env?: Record<string, string>;
  /** Cancel → kill. */
  signal?: AbortSignal;
}

export type SandboxFailureKind = 'timeout' | 'memory' | 'crashed' | 'killed' | 'task-error';

/**
 * The sandboxed task did not return a result. `stderrTail` holds the end of the child's stderr.
 * `fault` says whose fault it was: by default a kill (`killed`: our abort, or a signal from outside such
 * as the kernel's OOM killer) is the infrastructure's and is retried; a timeout, a crash, a task error or
 * running over the sandbox's own memory limit is the candidate's. run.ts states it where that differs.
 */
export class SandboxFailure extends EvoError {
  constructor(
    message: string,
    readonly kind: SandboxFailureKind,
    readonly stderrTail = '',
    fault: ErrorFault = kind === 'killed' ? 'infrastructure' : 'candidate',
  ) {
    super(message, 'SANDBOX_FAILURE', fault);
    this.name = 'SandboxFailure';
  }
}
