// Framework baselines, the variant catalogue and the offline provider on the wasm backend: every
// block compiles, type-checks and passes the validator's checks; leaky blocks fail causality.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ts from 'typescript';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attentionContext, causalMask, ParamStore } from '../evaluator/attention-runtime';
import type { Tensor } from '../evaluator/attention-context';
import { compileAttention, extractBlock, frameworkTemplate, FRAMEWORKS, makeProgram, type Framework } from '../core/program';
import { repoRoot } from '../core/paths';
import { CATALOGUE, KNOBS, NONCAUSAL_BLOCK, UNIFORM_CONTROL_BLOCK, variantsFor } from '../propose/offline/catalogue';
import { knobsIn, OfflineCatalogueProvider, offlineCandidates, type MutationProposal, type MutationRequest } from '../propose/offline/provider';

const B = 2;
const T = 8;
const D = 16;
const SHAPE = { dModel: D, nHeads: 2, seqLen: T };
const TOL = 1e-5;

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  assert.equal(tf.getBackend(), 'wasm');
});

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Runs `block` once on a fresh ParamStore(seed) and returns the output's values. */
function outputOf(block: string, seed: number, x: Tensor): Float32Array {
  const store = new ParamStore(seed);
  const mask = causalMask(T);
  try {
    const ctx = attentionContext(store, 'L0.attn', SHAPE, mask);
    return tf.tidy(() => compileAttention(block)(tf, ctx, x).dataSync() as Float32Array);
  } finally {
    store.dispose();
    mask.dispose();
  }
}

/**
 * The validator's checks on a (2, 8, 16) input with H = 2: output shape, finiteness, causality
 * (future positions replaced, earlier outputs compared at p = 0, 3, 6), batch-row independence,
 * and a nonzero finite gradient for every parameter. Returns the problems found.
 */
function checkBlock(block: string): string[] {
  const fn = compileAttention(block);
  const store = new ParamStore(11);
  const mask = causalMask(T);
  const ctx = attentionContext(store, 'L0.attn', SHAPE, mask);
  const problems: string[] = [];
  try {
    tf.tidy(() => {
      const x = tf.randomNormal([B, T, D], 0, 1, 'float32', 1);
      const y = fn(tf, ctx, x);
      if (y.shape.join(',') !== [B, T, D].join(',')) {
        problems.push(`shape: got [${y.shape}]`);
        return;
      }
      if (!Array.from(y.dataSync()).every(Number.isFinite)) problems.push('finite: output has NaN or Inf');
      for (const p of [0, 3, 6]) {
        const fresh = tf.randomNormal([B, T - p - 1, D], 0, 1, 'float32', 100 + p);
        const x2 = tf.concat([tf.slice(x, [0, 0, 0], [B, p + 1, D]), fresh], 1);
        const diff = maxAbsDiff(tf.slice(y, [0, 0, 0], [B, p + 1, D]), tf.slice(fn(tf, ctx, x2), [0, 0, 0], [B, p + 1, D]));
        if (!(diff <= TOL)) problems.push(`causal: output at positions ≤ ${p} moved by ${diff} when later inputs changed`);
      }
      const x3 = tf.concat([tf.slice(x, [0, 0, 0], [1, T, D]), tf.randomNormal([1, T, D], 0, 1, 'float32', 200)], 0);
      const rowDiff = maxAbsDiff(tf.slice(y, [0, 0, 0], [1, T, D]), tf.slice(fn(tf, ctx, x3), [0, 0, 0], [1, T, D]));
      if (!(rowDiff <= TOL)) problems.push(`batch: row 0 moved by ${rowDiff} when row 1 changed`);
      const R = tf.randomNormal([B, T, D], 0, 1, 'float32', 300);
      const vars = [...store.vars.values()];
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(fn(tf, ctx, x), R)) as tf.Scalar, vars);
      for (const v of vars) {
        const g = Array.from(grads[v.name].dataSync());
        if (!g.every(Number.isFinite)) problems.push(`gradient: ${v.name} has a non-finite gradient`);
        else if (!g.some((e) => e !== 0)) problems.push(`gradient: ${v.name} gets no gradient`);
      }
    });
  } finally {
    store.dispose();
    mask.dispose();
  }
  return problems;
}

/** Type-checks each block as a whole framework program under the repository's tsconfig. */
function typeErrors(programs: { framework: Framework; block: string }[]): string[] {
  const config = ts.readConfigFile(path.join(repoRoot, 'tsconfig.json'), ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, repoRoot).options, noEmit: true };
  const virtual = new Map(
    programs.map((p, i) => [path.join(repoRoot, 'frameworks', `__typecheck_${i}.ts`), makeProgram(p.framework, p.block).source]),
  );
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, ...rest) => {
    const text = virtual.get(path.resolve(file));
    return text !== undefined ? ts.createSourceFile(file, text, lang) : getSourceFile(file, lang, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => virtual.has(path.resolve(file)) || fileExists(file);
  const program = ts.createProgram([...virtual.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
}

async function proposals(framework: Framework, seed: number, iterations: number, history: MutationRequest['history'] = []): Promise<MutationProposal[]> {
  const provider = new OfflineCatalogueProvider();
  const parentBlock = extractBlock(frameworkTemplate(framework));
  const out: MutationProposal[] = [];
  const past = [...history];
  for (let iteration = 1; iteration <= iterations; iteration++) {
    const p = await provider.propose({ framework, parentBlock, iteration, seed, history: past });
    out.push(p);
    past.push({ block: p.block, fitness: null, status: 'accepted' });
  }
  return out;
}

test('each framework baseline passes the checks and computes the coefficient-dynamics function', () => {
  const x = tf.randomNormal([B, T, D], 0, 1, 'float32', 5);
  const reference = outputOf(extractBlock(frameworkTemplate('coefficient_dynamics')), 42, x);
  for (const framework of FRAMEWORKS) {
    const block = extractBlock(frameworkTemplate(framework));
    assert.deepEqual(checkBlock(block), [], framework);
    const out = outputOf(block, 42, x);
    const worst = out.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i])), 0);
    assert.ok(worst < TOL, `${framework} differs from the coefficient-dynamics baseline by ${worst}`);
  }
  x.dispose();
});

test('the catalogue: ≥ 8 variants per framework, unique ids, knobs declared once and in range', () => {
  assert.equal(new Set(CATALOGUE.map((v) => v.id)).size, CATALOGUE.length);
  for (const framework of FRAMEWORKS) {
    const variants = variantsFor(framework);
    assert.ok(variants.length >= 8, `${framework}: ${variants.length} variants`);
    const baseline = extractBlock(frameworkTemplate(framework));
    for (const v of variants) {
      for (const field of ['id', 'title', 'reference', 'idea', 'block'] as const) assert.ok(v[field].trim(), `${v.id}.${field}`);
      assert.notEqual(v.block, baseline, v.id);
      assert.equal(makeProgram(framework, v.block).block, v.block, `${v.id} round-trips through a program`);
      assert.deepEqual(
        knobsIn(v.block).map((k) => k.name).sort(),
        (v.knobs ?? []).map((k) => k.name).sort(),
        `${v.id}: declared knobs are the block's knobs`,
      );
      for (const k of v.knobs ?? []) {
        assert.equal(KNOBS[k.name], k);
        assert.equal(v.block.split(`const ${k.name} = `).length, 2, `${v.id}: ${k.name} declared once`);
        const value = Number(new RegExp(`const ${k.name} = ([^;]+);`).exec(v.block)![1]);
        assert.ok(value >= k.min && value <= k.max, `${v.id}: ${k.name} = ${value} outside its range`);
      }
    }
  }
  const blocks = new Set(CATALOGUE.map((v) => v.block));
  assert.ok(!blocks.has(UNIFORM_CONTROL_BLOCK));
  for (const framework of FRAMEWORKS) assert.ok(!blocks.has(NONCAUSAL_BLOCK[framework]));
});

for (const v of CATALOGUE) {
  test(`catalogue ${v.id}: shape, causal, batch-independent, finite, gradient to every param`, () => {
    assert.deepEqual(checkBlock(v.block), []);
  });
}

test('the uniform control passes the checks', () => {
  assert.deepEqual(checkBlock(UNIFORM_CONTROL_BLOCK), []);
});

test('the non-causal examples fail the causality check', () => {
  for (const framework of FRAMEWORKS) {
    const problems = checkBlock(NONCAUSAL_BLOCK[framework]);
    assert.ok(problems.some((p) => p.startsWith('causal:')), `${framework}: ${problems.join('; ') || 'no problem found'}`);
  }
});

test('offline provider: 20 iterations give 20 distinct blocks per framework, all passing the checks', async () => {
  for (const framework of FRAMEWORKS) {
    const got = await proposals(framework, 7, 20);
    assert.equal(new Set(got.map((p) => p.block)).size, 20, framework);
    for (const p of got) {
      assert.equal(p.provider, 'offline-catalogue');
      assert.ok(p.description.trim() && p.variantIds.length > 0, p.description);
      assert.deepEqual(checkBlock(p.block), [], `${framework}: ${p.description}`);
    }
    const again = await proposals(framework, 7, 20);
    assert.deepEqual(again.map((p) => p.block), got.map((p) => p.block), `${framework}: same seed, same proposals`);
    const other = await proposals(framework, 8, 20);
    assert.notDeepEqual(other.map((p) => p.block), got.map((p) => p.block), `${framework}: another seed, another order`);
  }
});

test('offline provider: once catalogue and compositions are used up it perturbs knobs, within range', async () => {
  for (const framework of FRAMEWORKS) {
    const used = offlineCandidates(framework).map((c) => ({ block: c.block, fitness: null, status: 'accepted' }));
    const got = await proposals(framework, 3, 4, used);
    assert.equal(new Set(got.map((p) => p.block)).size, 4, framework);
    for (const p of got) {
      assert.match(p.description, /^perturbed \w+ /);
      assert.ok(!used.some((u) => u.block === p.block));
      for (const k of knobsIn(p.block)) {
        const value = Number(new RegExp(`const ${k.name} = ([^;]+);`).exec(p.block)![1]);
        assert.ok(value >= k.min && value <= k.max, `${k.name} = ${value}`);
      }
      assert.deepEqual(checkBlock(p.block), [], `${framework}: ${p.description}`);
    }
  }
  // A parent that declares knobs is perturbed itself.
  const parent = CATALOGUE.find((v) => v.id === 'cd-sigmoid')!;
  const history = offlineCandidates('coefficient_dynamics').map((c) => ({ block: c.block, fitness: null, status: 'accepted' }));
  const p = await new OfflineCatalogueProvider().propose({ framework: 'coefficient_dynamics', parentBlock: parent.block, iteration: 99, seed: 1, history });
  assert.match(p.description, /^perturbed sigmoidBiasScale 1 → [\d.]+ in the parent$/);
  assert.deepEqual(p.variantIds, ['cd-sigmoid']);
});

test('catalogue blocks, compositions and the controls type-check as framework programs', () => {
  // One ill-typed block rides along to show the check can fail: it must be the only error.
  const illTyped = { framework: 'coefficient_dynamics' as Framework, block: UNIFORM_CONTROL_BLOCK.replace('tf.div(', 'tf.divide(') };
  const programs = [
    illTyped,
    ...offlineCandidates('coefficient_dynamics').map((c) => ({ framework: 'coefficient_dynamics' as Framework, block: c.block })),
    ...offlineCandidates('test_time_regression').map((c) => ({ framework: 'test_time_regression' as Framework, block: c.block })),
    ...offlineCandidates('matrix_mixer').map((c) => ({ framework: 'matrix_mixer' as Framework, block: c.block })),
    ...FRAMEWORKS.flatMap((framework) => [
      { framework, block: UNIFORM_CONTROL_BLOCK },
      { framework, block: NONCAUSAL_BLOCK[framework] },
    ]),
  ];
  const errors = typeErrors(programs);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /^__typecheck_0\.ts: Property 'divide' does not exist/);
});
