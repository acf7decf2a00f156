// Validation of a candidate block: syntax and static checks in this process, then the dynamic checks
// (validate/dynamic.ts) in a sandboxed child. A bad candidate gives a report, never an exception.
import * as path from 'node:path';
import { EvoError, ProgramRejected } from '../core/errors';
import { baselineBlock, transpileBlock, type Program } from '../core/program';
import { SandboxFailure } from '../sandbox/options';
import { runInSandbox } from '../sandbox/run';
import { callBudgetMs, CALL_BUDGET_FLOOR_MS, dynamicChecks, type CheckResult, type DynamicInput, type DynamicReport, type ValidationSize } from './report';
import { assertStaticallySafe } from './static';

export { staticFindings, describeFinding, assertStaticallySafe, type StaticFinding } from './static';
export type { ValidationSize } from './report';

export interface ValidationSpec {
  /** The largest training size's shape: every dynamic check, and the only one the counted work and timing use. */
  dModel: number;
  nHeads: number;
  /**
   * The run's other training sizes: every dynamic check but tamper and time also runs at each shape (a
   * size with the shape of dModel/nHeads or of an earlier one adds nothing). Absent: the one shape only.
   */
  otherSizes?: ValidationSize[];
  seqLen: number;
  batch: number;
  /**
   * Refuse a block whose forward+backward counts more than this multiple of the baseline's work (kernel
   * calls and FLOPs); a call of the block running longer than this multiple of the baseline's step time
   * (at least 20 s) is killed.
   */
  timeMultiple: number;
  wallTimeoutMs: number;
  /** Memory limit of the validation child (default 2048 MB). */
  memoryMb?: number;
  /**
   * The run's trainings are asked for the torch engine: also trace the block at every checked shape (after
   * every other check passed) and refuse, by `trace`, a block the engine cannot take, before it trains.
   */
  traceForTorch?: boolean;
}

export interface ValidationReport {
  ok: boolean;
  checks: CheckResult[];
  /** The first failing check's one-line message, fed to the next mutation. */
  reason?: string;
  blockParams?: number;
  msPerStep?: number;
  baselineMsPerStep?: number;
}

const DEFAULT_MEMORY_MB = 2048;
const MAX_DETAIL_CHARS = 1000;
const CHILD_SCRIPT = path.join(__dirname, '..', 'sandbox', 'validate-child.js');

function refused(checks: CheckResult[], name: string, message: string): ValidationReport {
  return { ok: false, checks: [...checks, { name, ok: false, detail: message }], reason: message };
}

function checkSpec(spec: ValidationSpec): void {
  const ints = [spec.dModel, spec.nHeads, spec.seqLen, spec.batch];
  if (!ints.every((n) => Number.isInteger(n) && n > 0)) throw new EvoError(`validation spec: dModel, nHeads, seqLen and batch must be positive integers, got ${JSON.stringify(spec)}`, 'BAD_VALIDATION_SPEC');
  if (spec.dModel % spec.nHeads !== 0) throw new EvoError(`validation spec: dModel ${spec.dModel} is not divisible by nHeads ${spec.nHeads}`, 'BAD_VALIDATION_SPEC');
  if (spec.batch < 2) throw new EvoError('validation spec: batch must be at least 2 (the batch-independence check perturbs row 1)', 'BAD_VALIDATION_SPEC');
  if (spec.seqLen < 4) throw new EvoError('validation spec: seqLen must be at least 4', 'BAD_VALIDATION_SPEC');
  if (!(spec.timeMultiple > 0) || !(spec.wallTimeoutMs > 0)) throw new EvoError('validation spec: timeMultiple and wallTimeoutMs must be positive', 'BAD_VALIDATION_SPEC');
  for (const size of spec.otherSizes ?? []) {
    if (typeof size.name !== 'string' || !(Number.isInteger(size.dModel) && size.dModel > 0 && Number.isInteger(size.nHeads) && size.nHeads > 0) || size.dModel % size.nHeads !== 0) {
      throw new EvoError(`validation spec: size ${JSON.stringify(size)} needs a name and a dModel divisible by its nHeads`, 'BAD_VALIDATION_SPEC');
    }
  }
}

/** The other sizes whose shape differs from the main one and from every earlier one: each shape is checked once. */
function distinctShapes(spec: ValidationSpec): ValidationSize[] {
  const seen = new Set([`${spec.dModel}/${spec.nHeads}`]);
  const out: ValidationSize[] = [];
  for (const { name, dModel, nHeads } of spec.otherSizes ?? []) {
    const key = `${dModel}/${nHeads}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name, dModel, nHeads });
  }
  return out;
}

/**
 * The child's report is data from a process that ran untrusted code: keep only well-formed fields, and
 * call the block valid only when every dynamic check is present and passed.
 */
function trustedReport(raw: unknown, checks: CheckResult[], expected: readonly string[]): ValidationReport {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Partial<DynamicReport>;
  const text = (v: unknown): string => String(v).split('\n')[0].slice(0, MAX_DETAIL_CHARS);
  const dynamic = Array.isArray(r.checks)
    ? r.checks
        .filter((c): c is CheckResult => typeof c === 'object' && c !== null && typeof c.name === 'string')
        .map((c) => ({ name: text(c.name), ok: c.ok === true, detail: text(c.detail) }))
    : [];
  const all = [...checks, ...dynamic];
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const report: ValidationReport = {
    ok: false,
    checks: all,
    blockParams: num(r.blockParams),
    msPerStep: num(r.msPerStep),
    baselineMsPerStep: num(r.baselineMsPerStep),
  };
  const failed = all.find((c) => !c.ok);
  const missing = expected.find((name) => !dynamic.some((c) => c.name === name && c.ok));
  if (failed) report.reason = typeof r.reason === 'string' ? text(r.reason) : failed.detail;
  else if (missing) report.reason = `validation: the sandboxed checks ended without a result for "${missing}"`;
  else report.ok = true;
  return report;
}

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;

/**
 * The parent's side of the per-call budget: the child announces the baseline's step time before any
 * candidate code runs, then every call's start and end; a call still running when its budget is spent
 * aborts the sandbox (which kills the child's process group) and records why.
 */
class CallDeadline {
  readonly abort = new AbortController();
  /** The refusal, once a call ran past its budget. */
  overrun: string | undefined;
  private budget: { baselineMs: number; budgetMs: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeMultiple: number) {}

  readonly onMessage = (msg: unknown): void => {
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as { kind?: unknown; baselineMs?: unknown };
    if (m.kind === 'budget' && this.budget === undefined && typeof m.baselineMs === 'number' && Number.isFinite(m.baselineMs) && m.baselineMs >= 0) {
      this.budget = { baselineMs: m.baselineMs, budgetMs: callBudgetMs(this.timeMultiple, m.baselineMs) };
    } else if (m.kind === 'call' && this.budget !== undefined) {
      const { baselineMs, budgetMs } = this.budget;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.overrun =
          `time: a call of the block ran past its ${seconds(budgetMs)} budget (${this.timeMultiple}× the baseline's ` +
          `${baselineMs.toFixed(1)} ms forward+backward, at least ${seconds(CALL_BUDGET_FLOOR_MS)}) and was killed (the block is too slow or never returns)`;
        this.abort.abort();
      }, budgetMs);
    } else if (m.kind === 'done') {
      clearTimeout(this.timer);
    }
  };

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Validates a program's block: syntax and static checks here, then the dynamic checks in the sandbox with
 * the framework's baseline counted and timed alongside, each call of the block held to its budget. Returns
 * ok: false with a reason for a bad candidate; throws only for infrastructure problems (bad spec, a sandbox
 * that cannot start, a broken baseline, a cancelled or externally killed child). `signal` cancels: the child is killed.
 */
export async function validateProgram(program: Program, spec: ValidationSpec, scratchDir: string, signal?: AbortSignal): Promise<ValidationReport> {
  checkSpec(spec);
  const checks: CheckResult[] = [];
  try {
    transpileBlock(program.block);
    checks.push({ name: 'syntax', ok: true, detail: 'the block parses and transpiles' });
    assertStaticallySafe(program.block);
    checks.push({ name: 'static', ok: true, detail: 'no forbidden constructs' });
  } catch (err) {
    if (err instanceof ProgramRejected) return refused(checks, err.check, err.message);
    throw err;
  }

  const input: DynamicInput = {
    block: program.block,
    baselineBlock: baselineBlock(program.framework),
    spec: {
      dModel: spec.dModel,
      nHeads: spec.nHeads,
      otherSizes: distinctShapes(spec),
      seqLen: spec.seqLen,
      batch: spec.batch,
      timeMultiple: spec.timeMultiple,
      trace: spec.traceForTorch === true,
    },
  };
  let raw: unknown;
  const deadline = new CallDeadline(spec.timeMultiple);
  try {
    raw = await runInSandbox<DynamicReport>({
      script: CHILD_SCRIPT,
      input,
      scratchDir,
      wallTimeoutMs: spec.wallTimeoutMs,
      memoryMb: spec.memoryMb ?? DEFAULT_MEMORY_MB,
      onMessage: deadline.onMessage,
      signal: signal ? AbortSignal.any([signal, deadline.abort.signal]) : deadline.abort.signal,
    });
  } catch (err) {
    if (deadline.overrun !== undefined && err instanceof SandboxFailure && err.kind === 'killed') return refused(checks, 'time', deadline.overrun);
    if (err instanceof ProgramRejected) return refused(checks, err.check, err.message);
    // A child killed by our cancellation or by the kernel away from its limit says nothing about the candidate.
    if (err instanceof SandboxFailure && !err.retryable) {
      if (err.kind === 'timeout') return refused(checks, 'timeout', `timeout: validation ${err.message.replace(/^candidate process /, '')} (the block is too slow or never returns)`);
      if (err.kind === 'memory' || err.kind === 'killed') return refused(checks, 'memory', `memory: ${err.message}`);
      if (err.kind === 'crashed') return refused(checks, 'crash', `crash: ${err.message}`);
      // Whatever escapes the checks' own handling inside the sandbox was caused by the candidate
      // (an unprintable throw, wasm memory running out): a refusal, never a failed step.
      if (err.kind === 'task-error') return refused(checks, 'crash', `crash: the validation child failed while running the block: ${err.message}`);
    }
    throw err;
  } finally {
    deadline.stop();
  }
  return trustedReport(raw, checks, dynamicChecks(input.spec));
}
