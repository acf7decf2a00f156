// What the validation child receives and reports back: shared by the parent (validate/index.ts) and
// the child (validate/dynamic.ts) without loading tfjs into the parent.

/** A training size's attention shape; its name labels a check that fails only there. */
export interface ValidationSize {
  name: string;
  dModel: number;
  nHeads: number;
}

export interface DynamicSpec {
  /** The largest training size's shape: every check runs here, and the counted work and timing only here. */
  dModel: number;
  nHeads: number;
  /**
   * The run's other training sizes (shapes other than dModel/nHeads): every check but tamper and time runs
   * at each too, with the same small batch, so a block that behaves differently at some width or head count
   * is refused before it trains there.
   */
  otherSizes: ValidationSize[];
  seqLen: number;
  batch: number;
  /**
   * Refuse a block whose forward+backward counts more than this multiple of the baseline's work; one call
   * of the block may also take at most this multiple of the baseline's step time (at least CALL_BUDGET_FLOOR_MS).
   */
  timeMultiple: number;
  /**
   * The run trains on the torch engine: also trace the block at every checked shape, as its trainings will
   * (trace/record.ts), and refuse by `trace` what the engine cannot take.
   */
  trace: boolean;
}

/**
 * The least wall time one call of the block is allowed, so a slow or busy machine never kills a valid block,
 * and a block that allocates without end still reaches its memory limit first (that takes 10–15 s on two
 * loaded cores) and is refused by `memory`.
 */
export const CALL_BUDGET_FLOOR_MS = 20_000;

/** Wall-clock budget of one call of the block (a forward, or a forward+backward), in ms. */
export function callBudgetMs(timeMultiple: number, baselineMs: number): number {
  return Math.max(CALL_BUDGET_FLOOR_MS, timeMultiple * (Number.isFinite(baselineMs) && baselineMs > 0 ? baselineMs : 0));
}

/**
 * Progress the validation child sends before and around every call of the block: the budget once (before
 * any candidate code runs), then `call` when a call starts and `done` when it returns. The parent kills the
 * child when a call runs past its budget.
 */
export type DynamicProgress = { kind: 'budget'; baselineMs: number; budgetMs: number } | { kind: 'call' } | { kind: 'done' };

export interface DynamicInput {
  block: string;
  /** The framework's baseline block: the cost reference, counted and timed in the same process. */
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

/** The checks a passing block has passed: DYNAMIC_CHECKS, then `trace` where the spec asks for it. */
export function dynamicChecks(spec: Pick<DynamicSpec, 'trace'>): readonly string[] {
  return spec.trace ? [...DYNAMIC_CHECKS, 'trace'] : DYNAMIC_CHECKS;
}
