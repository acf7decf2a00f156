// The variant catalogue, its modifiers, the control programs and the offline provider: every block the
// catalogue holds or the provider proposes passes the real validator and type-checks; leaky controls fail
// causality. Checks of outputs (baselines agree, split scale is the baseline's function) run on wasm.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attentionContext, causalMask, ParamStore } from '../evaluator/attention-runtime';
import type { Tensor } from '../evaluator/attention-context';
import { baselineBlock, compileAttention, FRAMEWORKS, makeProgram, type Framework } from '../core/program';
import { repoRoot } from '../core/paths';
import { validateProgram, type ValidationReport } from '../validate';
import { validationSpec } from '../config/run-settings';
import { profileSettings } from '../evaluator/profiles';
import { CATALOGUE, KNOBS, variantsFor } from '../propose/offline/catalogue';
import { modifiersFor } from '../propose/offline/modifiers';
import { knobsIn, OfflineCatalogueProvider, offlineCandidates, type MutationProposal, type MutationRequest } from '../propose/offline/provider';
import { controlBlock, type ControlName } from './helpers/controls';

/** The spec a micro-profile run validates with. */
const SPEC = validationSpec(profileSettings('micro'));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-catalogue-test-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const NONCAUSAL_CONTROLS = FRAMEWORKS.map((f): ControlName => `noncausal-${f}`);
const VALID_CONTROLS: ControlName[] = ['causal-mean', 'self-only', 'baseline-split-scale'];

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

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

const validated = new Map<string, Promise<ValidationReport>>();

/** The validator's report on a block of the framework; each distinct block is validated once per run. */
function validate(framework: Framework, block: string): Promise<ValidationReport> {
  const key = `${framework}\n${block}`;
  let report = validated.get(key);
  if (!report) {
    report = validateProgram(makeProgram(framework, block), SPEC, scratch);
    validated.set(key, report);
  }
  return report;
}

async function assertValid(framework: Framework, block: string, what: string): Promise<void> {
  const report = await validate(framework, block);
  assert.equal(report.ok, true, `${what}: ${report.reason}`);
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
  const parentBlock = baselineBlock(framework);
  const out: MutationProposal[] = [];
  const past = [...history];
  for (let iteration = 1; iteration <= iterations; iteration++) {
    const p = await provider.propose({ framework, parentBlock, iteration, seed, history: past });
    out.push(p);
    past.push({ block: p.block, fitness: null, status: 'accepted' });
  }
  return out;
}

test('each framework baseline computes the coefficient-dynamics function', () => {
  const x = tf.randomNormal([B, T, D], 0, 1, 'float32', 5);
  const reference = outputOf(baselineBlock('coefficient_dynamics'), 42, x);
  for (const framework of FRAMEWORKS) {
    const worst = maxAbsDiff(outputOf(baselineBlock(framework), 42, x), reference);
    assert.ok(worst < TOL, `${framework} differs from the coefficient-dynamics baseline by ${worst}`);
  }
  x.dispose();
});

test('the catalogue: ≥ 8 variants per framework, unique ids, knobs declared once and in range, no control among them', () => {
  assert.equal(new Set(CATALOGUE.map((v) => v.id)).size, CATALOGUE.length);
  for (const framework of FRAMEWORKS) {
    const variants = variantsFor(framework);
    assert.ok(variants.length >= 8, `${framework}: ${variants.length} variants`);
    for (const v of variants) {
      for (const field of ['id', 'title', 'reference', 'idea', 'block'] as const) assert.ok(v[field].trim(), `${v.id}.${field}`);
      assert.notEqual(v.block, baselineBlock(framework), v.id);
      assert.equal(makeProgram(framework, v.block).block, v.block, `${v.id} round-trips through a program`);
      assert.deepEqual(
        knobsIn(v.block).map((k) => k.name).sort(),
        v.knobs.map((k) => k.name).sort(),
        `${v.id}: declared knobs are the block's knobs`,
      );
      for (const k of v.knobs) {
        assert.equal(KNOBS[k.name], k);
        assert.equal(v.block.split(`const ${k.name} = `).length, 2, `${v.id}: ${k.name} declared once`);
        const value = Number(new RegExp(`const ${k.name} = ([^;]+);`).exec(v.block)![1]);
        assert.ok(value >= k.min && value <= k.max, `${v.id}: ${k.name} = ${value} outside its range`);
      }
    }
  }
  const blocks = new Set(CATALOGUE.map((v) => v.block));
  for (const name of [...VALID_CONTROLS, ...NONCAUSAL_CONTROLS]) assert.ok(!blocks.has(controlBlock(name)), name);
});

test('each modifier applied to the baseline gives its catalogue variant exactly', () => {
  for (const framework of FRAMEWORKS) {
    for (const m of modifiersFor(framework)) {
      const variant = CATALOGUE.find((v) => v.id === m.id);
      assert.ok(variant, `${m.id} is a catalogue variant`);
      assert.equal(m.apply(baselineBlock(framework)), variant.block, m.id);
      assert.deepEqual(m.knobs, variant.knobs, `${m.id}: the modifier's knobs are the variant's`);
    }
  }
});

for (const v of CATALOGUE) {
  test(`catalogue ${v.id} passes the validator`, async () => {
    await assertValid(v.framework, v.block, v.id);
  });
}

test('the causal-mean, self-only and split-scale controls pass the validator', async () => {
  for (const name of VALID_CONTROLS) await assertValid('coefficient_dynamics', controlBlock(name), name);
});

test('the non-causal controls are refused by the causality check', async () => {
  for (const framework of FRAMEWORKS) {
    const report = await validate(framework, controlBlock(`noncausal-${framework}`));
    assert.equal(report.ok, false, framework);
    assert.match(report.reason ?? '', /^causality: /, framework);
  }
});

test('the split-scale control computes the baseline function under another program hash', () => {
  const x = tf.randomNormal([B, T, D], 0, 1, 'float32', 6);
  const baseline = baselineBlock('coefficient_dynamics');
  const split = controlBlock('baseline-split-scale');
  const worst = maxAbsDiff(outputOf(split, 42, x), outputOf(baseline, 42, x));
  assert.ok(worst < TOL, `split scale differs from the baseline by ${worst}`);
  assert.notEqual(makeProgram('coefficient_dynamics', split).hash, makeProgram('coefficient_dynamics', baseline).hash);
  x.dispose();
});

test('offline provider: 20 iterations give 20 distinct blocks per framework, all passing the validator', async () => {
  for (const framework of FRAMEWORKS) {
    const got = await proposals(framework, 7, 20);
    assert.equal(new Set(got.map((p) => p.block)).size, 20, framework);
    for (const p of got) {
      assert.equal(p.provider, 'offline-catalogue');
      assert.ok(p.description.trim() && p.variantIds.length > 0, p.description);
      await assertValid(framework, p.block, `${framework}: ${p.description}`);
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
      await assertValid(framework, p.block, `${framework}: ${p.description}`);
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
  const illTyped = { framework: 'coefficient_dynamics' as Framework, block: controlBlock('causal-mean').replace('tf.div(', 'tf.divide(') };
  const programs = [
    illTyped,
    ...FRAMEWORKS.flatMap((framework) => offlineCandidates(framework).map((c) => ({ framework, block: c.block }))),
    ...FRAMEWORKS.flatMap((framework) => [...VALID_CONTROLS, `noncausal-${framework}` as const].map((name) => ({ framework, block: controlBlock(name) }))),
  ];
  const errors = typeErrors(programs);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /^__typecheck_0\.ts: Property 'divide' does not exist/);
});
