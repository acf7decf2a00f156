// What the validation child receives and reports back: shared by the parent (validate/index.ts) and
// the child (validate/dynamic.ts) without loading tfjs into the parent.

export interface DynamicSpec {
  dModel: number;
  nHeads: number;
  seqLen: number;
  batch: number;
  /** Refuse a block whose forward+backward takes longer than this multiple of the baseline's. */
  timeMultiple: number;
}

export interface DynamicInput {
  block: string;
  /** The framework's baseline block: the time reference, measured in the same process. */
  baselineBlock: string;
  spec: DynamicSpec;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DynamicReport {
  checks: CheckResult[];
  /** The failing check's one-line message (absent when every check passed). */
  reason?: string;
  blockParams?: number;
  msPerStep?: number;
  baselineMsPerStep?: number;
}

/** Every check a passing block has passed, in the order they run. */
export const DYNAMIC_CHECKS = ['compile', 'shape', 'determinism', 'finite', 'causality', 'batch', 'gradient', 'tamper', 'time'] as const;
