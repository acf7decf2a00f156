// Dynamic checks of a candidate block on the tfjs wasm backend (shape, determinism, finiteness, causality,
// batch independence, gradients, tampering, time; the trace for a run on the torch engine). Runs candidate
// code: call only inside the sandbox.
// The time check compares counted work (validate/cost.ts), not wall time, so a busy machine cannot fail
// it; the parent enforces a per-call wall-clock budget announced before the candidate first runs.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { AttentionFn, Tensor, Variable } from '../evaluator/attention-context';
import { attentionContext, causalMask, ParamStore, seedFor } from '../evaluator/attention-runtime';
import { oneLine, ProgramRejected } from '../core/errors';
import { compileAttention } from '../core/program';
import { countWork, workCost, type WorkCount } from './cost';
import { compileForTrace, traceAtShape, TRACE_SEED } from '../trace/record';
import { callBudgetMs, type CheckResult, type DynamicInput, type DynamicProgress, type DynamicReport, type DynamicSpec, type ValidationSize } from './report';

const PARAM_SEED = 1234;
const SCOPE = 'attn';
/** Outputs that must not move may still differ by float rounding of this size, relative to max |y|. */
const REL_TOL = 1e-4;
/** Scale of the replacement tokens in the causality and batch checks (inputs are LayerNorm'd, ~1). */
const PERTURB_SCALE = 3;
/** Standard deviation of the weights the causality, batch and gradient checks also run with. */
const RANDOM_WEIGHT_STD = 0.5;
const EXTREME_SCALE = 1e3;
/** Wall times (reported, never decisive): at least MIN_REPS steps each and up to TIME_TARGET_MS, the minimum kept. */
const TIME_TARGET_MS = 300;
const MIN_REPS = 3;
const MAX_REPS = 30;

/** Tells the parent when a candidate call starts and ends, so it can kill one that runs past its budget. */
interface CallWatch {
  start(): void;
  stop(): void;
}

/** A failed check; the message starts with the check's name. */
class CheckFailed extends ProgramRejected {
  constructor(check: string, text: string) {
    super(`${check}: ${text}`, check);
  }
}

const dims = (shape: readonly number[]): string => `(${shape.join(', ')})`;

/** The attention shape a build runs at (the sequence length is each call's own). */
interface Shape {
  dModel: number;
  nHeads: number;
}

/** One compiled block with its own parameters. */
class Build {
  readonly store = new ParamStore(PARAM_SEED);
  private readonly masks = new Map<number, Tensor>();

  constructor(
    readonly fn: AttentionFn,
    readonly shape: Shape,
    readonly scope: string,
    private readonly watch?: CallWatch,
  ) {}

  /** Runs `fn` (which calls the block) inside the parent's per-call budget. */
  private watched<R>(fn: () => R): R {
    this.watch?.start();
    try {
      return fn();
    } finally {
      this.watch?.stop();
    }
  }

  /** The block's output for x; call inside tf.tidy. `check` names the check a throw is blamed on. */
  forward(x: Tensor, check: string): Tensor {
    const [B, T, D] = x.shape;
    let mask = this.masks.get(T);
    if (!mask) {
      mask = tf.keep(causalMask(T));
      this.masks.set(T, mask);
    }
    const ctx = attentionContext(this.store, this.scope, { dModel: this.shape.dModel, nHeads: this.shape.nHeads, seqLen: T }, mask);
    let y: unknown;
    try {
      y = this.fn(tf, ctx, x);
    } catch (err) {
      if (err instanceof ProgramRejected) throw err;
      throw new CheckFailed(check, `the block threw for input ${dims([B, T, D])}: ${oneLine(err)}`);
    }
    if (!(y instanceof tf.Tensor)) {
      throw new CheckFailed('shape', `the block must return a tensor, got ${y === null ? 'null' : typeof y}`);
    }
    if (y.shape.length !== 3 || y.shape[0] !== B || y.shape[1] !== T || y.shape[2] !== D) {
      throw new CheckFailed('shape', `expected output ${dims([B, T, D])}, got ${dims(y.shape)}`);
    }
    if (y.dtype !== 'float32') throw new CheckFailed('shape', `expected a float32 output, got ${y.dtype}`);
    return y;
  }

  /** Output values for x. */
  run(x: Tensor, check: string): Float32Array {
    return this.watched(() => tf.tidy(() => this.forward(x, check)).dataSync() as Float32Array);
  }

  /**
   * Forward and backward of sum(y · r): the output, and the gradients of every parameter (by short name)
   * and of the input x.
   */
  grads(x: Tensor, r: Tensor, check: string): { y: Float32Array; params: Map<string, Float32Array>; input: Float32Array } {
    const vars = [...this.store.vars.entries()];
    const xVar = tf.variable(x, true, `${this.scope}.validate.input`);
    // A variable the output does not reach gets no gradient tensor at all: that reads as all zeros.
    const values = (t: Tensor | undefined, size: number): Float32Array => (t ? (t.dataSync() as Float32Array) : new Float32Array(size));
    let y: Float32Array = new Float32Array(0);
    const params = new Map<string, Float32Array>();
    let input: Float32Array = new Float32Array(0);
    try {
      this.watched(() => tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const out = this.forward(xVar, check);
          y = out.dataSync() as Float32Array; // the gradient tape disposes `out` once it returns
          return tf.sum(tf.mul(out, r));
        }, [...vars.map(([, v]) => v), xVar]);
        for (const [name, v] of vars) params.set(name.slice(this.scope.length + 1), values(grads[v.name], v.size));
        input = values(grads[xVar.name], x.size);
      }));
    } catch (err) {
      if (err instanceof ProgramRejected) throw err;
      throw new CheckFailed(check, `the backward pass failed for input ${dims(x.shape)}: ${oneLine(err)}`);
    } finally {
      xVar.dispose();
    }
    return { y, params, input };
  }

  /** One timed forward+backward step, in ms; `count` wraps the step to count its work. */
  step(x: Tensor, r: Tensor, count: (fn: () => void) => void = (fn) => fn()): number {
    return this.watched(() => {
      const t0 = performance.now();
      const vars = [...this.store.vars.values()];
      count(() =>
        tf.tidy(() => {
          const { value, grads } = vars.length > 0
            ? tf.variableGrads(() => tf.sum(tf.mul(this.forward(x, 'time'), r)), vars)
            : { value: tf.sum(tf.mul(this.forward(x, 'time'), r)), grads: {} as Record<string, Tensor> };
          value.dataSync();
          for (const g of Object.values(grads)) g.dataSync();
        }),
      );
      return performance.now() - t0;
    });
  }

  /** One forward+backward step's counted work, and its wall time in ms. */
  work(x: Tensor, r: Tensor): { work: WorkCount; ms: number } {
    let work: WorkCount = { calls: 0, flops: 0, bytes: 0 };
    const ms = this.step(x, r, (fn) => {
      work = countWork(fn);
    });
    return { work, ms };
  }

  dispose(): void {
    this.store.dispose();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}

function compile(block: string, shape: Shape, scope: string, watch?: CallWatch): Build {
  let fn: AttentionFn;
  try {
    fn = compileAttention(block);
  } catch (err) {
    if (err instanceof ProgramRejected) throw err;
    throw new CheckFailed('compile', `the block's top-level code threw: ${oneLine(err)}`);
  }
  return new Build(fn, shape, scope, watch);
}

function randn(shape: number[], seed: number, scale = 1): Tensor {
  return tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), scale));
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) if (Math.abs(v) > m) m = Math.abs(v);
  return m;
}

function countNonFinite(a: Float32Array): number {
  let n = 0;
  for (const v of a) if (!Number.isFinite(v)) n++;
  return n;
}

/** |a − b| treating NaN as equal to NaN and as infinitely far from any number. */
function diff(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  return a === b ? 0 : Math.abs(a - b);
}

const fmt = (v: number): string => (Number.isFinite(v) ? Number(v.toPrecision(2)).toString() : String(v));

/** Runs `fn` with every parameter replaced by N(0, std²) values, then restores the initial weights. */
function withRandomWeights<R>(build: Build, fn: () => R): R {
  const saved = new Map<Variable, Tensor>();
  for (const [name, v] of build.store.vars) {
    saved.set(v, tf.clone(v));
    v.assign(tf.tidy(() => tf.randomNormal(v.shape, 0, RANDOM_WEIGHT_STD, 'float32', seedFor(PARAM_SEED + 1, name))));
  }
  try {
    return fn();
  } finally {
    for (const [v, t] of saved) {
      v.assign(t);
      t.dispose();
    }
  }
}

/** Positions p at which the future (tokens after p) is perturbed. */
/** Every position that has a future: a block may leak at only some of them. */
function causalPositions(T: number): number[] {
  return Array.from({ length: Math.max(0, T - 1) }, (_, p) => p);
}

function checkCausality(build: Build, x: Tensor, weights: string): void {
  const [B, T, D] = x.shape;
  const y0 = build.run(x, 'causality');
  const tol = REL_TOL * Math.max(1, maxAbs(y0));
  for (const p of causalPositions(T)) {
    const xp = tf.tidy(() => tf.concat([tf.slice(x, [0, 0, 0], [B, p + 1, D]), randn([B, T - p - 1, D], 100 + p, PERTURB_SCALE)], 1));
    const yp = build.run(xp, 'causality');
    xp.dispose();
    let worst = 0;
    let worstAt = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t <= p; t++) {
        for (let d = 0; d < D; d++) {
          const i = (b * T + t) * D + d;
          const change = diff(y0[i], yp[i]);
          if (change > worst) {
            worst = change;
            worstAt = t;
          }
        }
      }
    }
    if (worst > tol) {
      throw new CheckFailed(
        'causality',
        `output at position ${worstAt} changed by ${fmt(worst)} when tokens after position ${p} were perturbed${weights} (the block reads the future)`,
      );
    }
  }
}

function checkBatch(build: Build, x: Tensor, weights: string): void {
  const [B, T, D] = x.shape;
  const y0 = build.run(x, 'batch');
  const tol = REL_TOL * Math.max(1, maxAbs(y0));
  // Perturb each row in turn: a block may read only some rows (the first, or those before it).
  for (let k = 0; k < B; k++) {
    const rows = [];
    if (k > 0) rows.push(tf.slice(x, [0, 0, 0], [k, T, D]));
    rows.push(randn([1, T, D], 200 + k, PERTURB_SCALE));
    if (k < B - 1) rows.push(tf.slice(x, [k + 1, 0, 0], [B - k - 1, T, D]));
    const xp = tf.concat(rows, 0);
    tf.dispose(rows);
    const yp = build.run(xp, 'batch');
    xp.dispose();
    for (let b = 0; b < B; b++) {
      if (b === k) continue;
      let worst = 0;
      for (let i = b * T * D; i < (b + 1) * T * D; i++) worst = Math.max(worst, diff(y0[i], yp[i]));
      if (worst > tol) {
        throw new CheckFailed('batch', `output of batch row ${b} changed by ${fmt(worst)} when only batch row ${k} was perturbed${weights} (the block mixes batch rows)`);
      }
    }
  }
}

/** Parameters whose gradient is all zero; throws on a non-finite output or gradient. */
function checkFinite(build: Build, x: Tensor, r: Tensor, what: string): Set<string> {
  const g = build.grads(x, r, 'finite');
  const bad = countNonFinite(g.y);
  if (bad > 0) throw new CheckFailed('finite', `output has ${bad} non-finite values (NaN or Inf) for ${what}`);
  const zero = new Set<string>();
  for (const [name, grad] of g.params) {
    const n = countNonFinite(grad);
    if (n > 0) throw new CheckFailed('finite', `the gradient of parameter "${name}" has ${n} non-finite values for ${what}`);
    if (maxAbs(grad) === 0) zero.add(name);
  }
  const n = countNonFinite(g.input);
  if (n > 0) throw new CheckFailed('finite', `the gradient with respect to the input has ${n} non-finite values for ${what}`);
  if (maxAbs(g.input) === 0) zero.add('');
  return zero;
}

/**
 * Minimum ms per forward+backward of each program, steps interleaved (baseline, candidate, baseline, …) so
 * that load from other processes weighs on both alike. Reported only: the time check decides on counted work.
 */
function timeAgainstBaseline(cand: Build, base: Build, x: Tensor, r: Tensor): { ms: number; baseMs: number } {
  let ms = Infinity;
  let baseMs = Infinity;
  let total = 0;
  for (let reps = 0; reps < MAX_REPS && (reps < MIN_REPS || total < TIME_TARGET_MS); reps++) {
    const b = base.step(x, r);
    const c = cand.step(x, r);
    baseMs = Math.min(baseMs, b);
    ms = Math.min(ms, c);
    total += b + c;
  }
  return { ms, baseMs };
}

const mflop = (w: WorkCount): string => `${fmt(w.flops / 1e6)} MFLOP`;

/** Identity snapshot of what a block could patch to change the fixed model code around it. */
function builtinsSnapshot(): Map<string, unknown> {
  const snap = new Map<string, unknown>();
  const add = (label: string, obj: object): void => {
    for (const key of Object.getOwnPropertyNames(obj)) {
      const d = Object.getOwnPropertyDescriptor(obj, key);
      snap.set(`${label}.${key}`, d && ('value' in d ? d.value : d.get));
    }
  };
  add('tf', tf);
  add('tf.Tensor.prototype', tf.Tensor.prototype);
  add('tf.Variable.prototype', tf.Variable.prototype);
  add('Math', Math);
  add('Object', Object);
  add('Array.prototype', Array.prototype);
  add('Function.prototype', Function.prototype);
  add('JSON', JSON);
  add('Number', Number);
  add('Number.prototype', Number.prototype);
  add('String.prototype', String.prototype);
  add('Object.prototype', Object.prototype);
  add('Reflect', Reflect);
  add('Promise.prototype', Promise.prototype);
  add('Map.prototype', Map.prototype);
  add('Set.prototype', Set.prototype);
  add('Float32Array.prototype', Float32Array.prototype);
  add('Int32Array.prototype', Int32Array.prototype);
  add('Object.getPrototypeOf(Float32Array.prototype)', Object.getPrototypeOf(Float32Array.prototype));
  add('Buffer', Buffer);
  add('globalThis', globalThis);
  return snap;
}

function checkTamper(before: Map<string, unknown>): void {
  const after = builtinsSnapshot();
  const changed = [...before].filter(([key, value]) => !Object.is(after.get(key), value)).map(([key]) => key);
  if (changed.length > 0) {
    const more = changed.length > 1 ? ` (and ${changed.length - 1} more)` : '';
    throw new CheckFailed('tamper', `the block changed ${changed[0]}${more}; it must not modify tfjs or built-ins`);
  }
}

/**
 * Compiles the trusted baseline and measures one forward+backward step: its counted work and its wall time
 * (the minimum of a few steps after a warm-up, under whatever load there is now). A failure here is the
 * infrastructure's, not the candidate's.
 */
function compileBaseline(block: string, spec: DynamicSpec, x: Tensor, r: Tensor): { base: Build; work: WorkCount; ms: number } {
  let base: Build | undefined;
  try {
    base = compile(block, spec, 'baseline');
    base.run(x, 'time');
    const { work } = base.work(x, r);
    let ms = Infinity;
    for (let i = 0; i < MIN_REPS; i++) ms = Math.min(ms, base.step(x, r));
    return { base, work, ms };
  } catch (err) {
    base?.dispose();
    throw new Error(`the framework's baseline block failed on the validation spec: ${oneLine(err)}`);
  }
}

function validSpec(spec: DynamicSpec): void {
  const ints = [spec.dModel, spec.nHeads, spec.seqLen, spec.batch, ...spec.otherSizes.flatMap((s) => [s.dModel, s.nHeads])];
  const divisible = [spec, ...spec.otherSizes].every((s) => s.dModel % s.nHeads === 0);
  if (!ints.every((n) => Number.isInteger(n) && n > 0) || !divisible || spec.batch < 2 || spec.seqLen < 4) {
    throw new Error(`bad validation spec ${JSON.stringify(spec)}: dModel divisible by nHeads, batch ≥ 2, seqLen ≥ 4`);
  }
  if (!(spec.timeMultiple > 0)) throw new Error(`bad validation spec: timeMultiple must be positive, got ${spec.timeMultiple}`);
  if (typeof spec.trace !== 'boolean') throw new Error(`bad validation spec: trace must be true or false, got ${spec.trace}`);
}

function sizeLabel(size: ValidationSize): string {
  return `${size.name} (d_model ${size.dModel}, ${size.nHeads} head${size.nHeads === 1 ? '' : 's'})`;
}

/** Runs `fn` at another training size; a refusal there names it: "causality at d16-L1-H1 (d_model 16, 1 head): …". */
function atSize<R>(size: ValidationSize, fn: () => R): R {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ProgramRejected)) throw err;
    const prefix = `${err.check}: `;
    const text = err.message.toLowerCase().startsWith(prefix.toLowerCase()) ? err.message.slice(prefix.length) : err.message;
    throw new ProgramRejected(`${err.check} at ${sizeLabel(size)}: ${text}`, err.check);
  }
}

/** The checks that run at every training size's shape, in DYNAMIC_CHECKS order; tamper and time run once. */
const BEHAVIOUR_CHECKS = new Set(['compile', 'shape', 'determinism', 'finite', 'causality', 'batch', 'gradient']);

/** Where the behaviour checks run: one shape, its build's variable scope (tfjs names are global), its inputs. */
interface CheckShape {
  shape: Shape;
  scope: string;
  x: Tensor;
  r: Tensor;
  /** Perturb only the first batch row in the causality check (see behaviourChecks). */
  causalityRowsOne: boolean;
}

/**
 * compile, shape, determinism, finite, causality, batch and gradient at one shape, each passing check
 * reported through `pass`. Returns the (rebuilt) build, which the caller disposes.
 */
function behaviourChecks(block: string, at: CheckShape, watch: CallWatch | undefined, pass: (name: string, detail: string) => void): Build {
  const { x, r, shape, scope } = at;
  const [B, T, D] = x.shape;
  const B2 = B + 1;
  const T2 = Math.max(2, Math.ceil(T / 2) + 1);
  let build = compile(block, shape, scope, watch);
  try {
    pass('compile', 'the block defines attention(tf, ctx, x)');

    const x2 = randn([B2, T2, D], 3);
    const y1 = build.run(x, 'shape');
    build.run(x2, 'shape');
    x2.dispose();
    pass('shape', `output ${dims([B, T, D])} for input ${dims([B, T, D])} and ${dims([B2, T2, D])} for ${dims([B2, T2, D])}`);

    const again = build.run(x, 'determinism');
    const sameCall = y1.reduce((m, v, i) => Math.max(m, diff(v, again[i])), 0);
    if (sameCall > 0) {
      throw new CheckFailed('determinism', `two identical calls of the same build differ by ${fmt(sameCall)} (the block keeps hidden state or uses randomness)`);
    }
    build.dispose();
    build = compile(block, shape, scope, watch);
    const fresh = build.run(x, 'determinism');
    const rebuilt = y1.reduce((m, v, i) => Math.max(m, diff(v, fresh[i])), 0);
    if (rebuilt > 0) {
      throw new CheckFailed('determinism', `two fresh builds with the same seed differ by ${fmt(rebuilt)} (the block uses randomness or state outside ctx.param)`);
    }
    pass('determinism', 'identical outputs from two calls and from two fresh builds with the same seed');

    const zeroAtInit = checkFinite(build, x, r, 'random inputs');
    const xBig = tf.mul(x, EXTREME_SCALE);
    checkFinite(build, xBig, r, `random inputs ×${EXTREME_SCALE}`);
    xBig.dispose();
    pass('finite', `finite outputs and gradients for random inputs and inputs ×${EXTREME_SCALE}`);

    // Causality is the costly check (a forward for every position, with each set of weights); with one row
    // it costs half and still sees every position's future.
    const checked = build;
    const xc = at.causalityRowsOne ? tf.slice(x, [0, 0, 0], [1, T, D]) : x;
    try {
      checkCausality(checked, xc, '');
      withRandomWeights(checked, () => checkCausality(checked, xc, ' with randomised weights'));
    } finally {
      if (xc !== x) xc.dispose();
    }
    pass('causality', `outputs at positions ≤ p unchanged when tokens after p are perturbed, every p < ${T - 1}, initial and randomised weights`);

    checkBatch(checked, x, '');
    withRandomWeights(checked, () => checkBatch(checked, x, ' with randomised weights'));
    pass('batch', 'each batch row independent of the others, initial and randomised weights');

    const zeroRandom = withRandomWeights(checked, () => checkFinite(checked, x, r, 'random inputs with randomised weights'));
    const dead = [...zeroAtInit].filter((name) => zeroRandom.has(name));
    if (dead.includes('')) throw new CheckFailed('gradient', 'the output does not depend on the input x (its gradient is all zero)');
    if (dead.length > 0) {
      throw new CheckFailed('gradient', `parameter "${dead[0]}" gets an all-zero gradient (it does not affect the output)${dead.length > 1 ? ` (and ${dead.length - 1} more)` : ''}`);
    }
    pass('gradient', `every parameter (${checked.store.vars.size}, ${checked.store.count()} values) and the input get a non-zero gradient`);
    return checked;
  } catch (err) {
    build.dispose();
    throw err;
  }
}

/**
 * What the torch engine's trainings will do first (trace/record.ts), at each checked shape: a kernel the
 * engine lacks, a read of a traced value, a graph that depends on the data or does not replay is refused
 * here, with the training's reason, instead of at the candidate's first torch training. What it refuses
 * depends on which kernels the block dispatches, not on tensor sizes, except where the block branches on
 * its shape: the shapes are the training sizes' (D, H) at the run's T, and the batch the other checks use.
 */
function checkTrace(block: string, spec: DynamicSpec, watch: CallWatch | undefined): void {
  const fn = compileForTrace(block);
  for (const size of [spec, ...spec.otherSizes]) {
    const shape = { batch: spec.batch, seqLen: spec.seqLen, dModel: size.dModel, nHeads: size.nHeads };
    const trace = () => {
      watch?.start();
      try {
        traceAtShape(fn, shape, TRACE_SEED);
      } finally {
        watch?.stop();
      }
    };
    if (size === spec) trace();
    else atSize(size as ValidationSize, trace);
  }
}

/**
 * Runs every check in DYNAMIC_CHECKS order at the largest shape and stops at the first failure; then, once
 * the block passed there, the behaviour checks at every other training size's shape, so a block that
 * misbehaves only at some width or head count is refused with that size named. The counted work and the
 * timing run at the largest shape only, and before the other sizes, so a block too slow to validate is
 * refused for its cost before it runs more. A failing candidate gives a report with `reason`; only an
 * infrastructure problem (the backend, the baseline) throws.
 */
export async function runDynamicChecks(input: DynamicInput, ctx?: { progress(msg: DynamicProgress): void }): Promise<DynamicReport> {
  const { spec } = input;
  validSpec(spec);
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend could not be initialised');
  await tf.ready();

  const checks: CheckResult[] = [];
  const report: DynamicReport = { checks };
  const pass = (name: string, detail: string): void => {
    checks.push({ name, ok: true, detail });
  };
  const { batch: B, seqLen: T, dModel: D } = spec;
  const x = randn([B, T, D], 1);
  const r = randn([B, T, D], 2);
  // The baseline runs first, before any candidate code: its step time at the largest shape sets the budget
  // of every candidate call (those at smaller sizes cost less), which the parent enforces (it kills a call
  // that overruns; see validate/index.ts).
  const baseline = compileBaseline(input.baselineBlock, spec, x, r);
  const budgetMs = callBudgetMs(spec.timeMultiple, baseline.ms);
  ctx?.progress({ kind: 'budget', baselineMs: baseline.ms, budgetMs });
  const watch: CallWatch | undefined = ctx && {
    start: () => ctx.progress({ kind: 'call' }),
    stop: () => ctx.progress({ kind: 'done' }),
  };
  const before = builtinsSnapshot();
  let cand: Build | undefined;
  try {
    cand = behaviourChecks(input.block, { shape: spec, scope: SCOPE, x, r, causalityRowsOne: false }, watch, pass);
    report.blockParams = cand.store.count();

    checkTamper(before);
    pass('tamper', 'tfjs and built-ins unchanged');

    // Counted work of one forward+backward at the largest shape: kernel calls and FLOPs (validate/cost.ts),
    // the same on a busy machine as on an idle one. Wall times are measured too, for the report only.
    const build = cand;
    const counted = build.work(x, r);
    // The block ran again while being counted: nothing it patched then may slip into the report.
    checkTamper(before);
    const baseWork = baseline.work;
    const ratio = `${(workCost(counted.work) / workCost(baseWork)).toFixed(1)}×`;
    const counts = `${counted.work.calls} kernel calls and ${mflop(counted.work)} against ${baseWork.calls} and ${mflop(baseWork)}`;
    const measured = `one forward+backward at (B, T, D) = ${dims([B, T, D])} counts ${ratio} the baseline's work`;
    report.msPerStep = counted.ms;
    report.baselineMsPerStep = baseline.ms;
    if (workCost(counted.work) > spec.timeMultiple * workCost(baseWork)) {
      throw new CheckFailed('time', `${measured} (limit ${spec.timeMultiple}×): ${counts}`);
    }
    const timing = timeAgainstBaseline(build, baseline.base, x, r);
    checkTamper(before);
    report.msPerStep = timing.ms;
    report.baselineMsPerStep = timing.baseMs;
    pass(
      'time',
      `${measured} (limit ${spec.timeMultiple}×): ${counts}; measured ${timing.ms.toFixed(1)} ms against ${timing.baseMs.toFixed(1)} ms (reported, not checked)`,
    );

    // The other sizes' shapes, with the spec's small batch and causality on one row. Their passes are not
    // listed again: each behaviour check's detail names the shapes it also ran at.
    for (const size of spec.otherSizes) {
      const at: CheckShape = { shape: size, scope: `${SCOPE}.${size.name}`, x: randn([B, T, size.dModel], 1), r: randn([B, T, size.dModel], 2), causalityRowsOne: true };
      try {
        atSize(size, () => behaviourChecks(input.block, at, watch, () => {}).dispose());
      } finally {
        tf.dispose([at.x, at.r]);
      }
    }
    if (spec.otherSizes.length > 0) {
      checkTamper(before);
      const others = spec.otherSizes.map((s) => `(${s.dModel}, ${s.nHeads})`).join(', ');
      for (const c of checks) {
        if (BEHAVIOUR_CHECKS.has(c.name)) c.detail += `; also at the other training sizes' (D, H) = ${others}${c.name === 'causality' ? ', one batch row there' : ''}`;
      }
    }

    if (spec.trace) {
      checkTrace(input.block, spec, watch);
      checkTamper(before);
      const others = spec.otherSizes.map((s) => `, (${s.dModel}, ${s.nHeads})`).join('');
      pass('trace', `the torch engine can take the block: its kernel graph at (B, T) = (${B}, ${T}) and (D, H) = (${D}, ${spec.nHeads})${others} uses supported kernels only, reads no value back, is the same for other inputs and weights, and replays bit for bit`);
    }
  } catch (err) {
    if (!(err instanceof ProgramRejected)) throw err;
    // Rejections from program.ts and ctx.param carry their check but not yet its name as a prefix.
    const message = err.message.toLowerCase().startsWith(err.check.toLowerCase()) ? err.message : `${err.check}: ${err.message}`;
    checks.push({ name: err.check, ok: false, detail: message });
    report.reason = message;
  } finally {
    cand?.dispose();
    baseline.base.dispose();
    x.dispose();
    r.dispose();
  }
  return report;
}
