// The GPU engine as a specification: validated blocks trace to content-addressed kernel graphs that
// replay exactly, bad blocks are refused by name, and the PyTorch engine reproduces tfjs kernel by
// kernel, graph by graph and over 20 training steps, and resumes a killed run bit-identically.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { baselineBlock, baselineProgram, compileAttention, FRAMEWORKS } from '../core/program';
import { CATALOGUE } from '../propose/offline/catalogue';
import { recordBlock, traceBlock } from '../trace/record';
import { checkGraph, SUPPORTED_KERNELS, storeGraph, traceProgram, type TraceShape } from '../trace';
import { enginePackageDir, findTorchPython } from '../engine/python';
import { ProgramRejected } from '../core/errors';
import { KERNEL_CASES, PARITY_MODEL, PARITY_TRAINING, writeEngineFixtures } from './helpers/engine-fixtures';
import { writeTokenFile } from '../evaluator/data/token-file';
import { repoRoot } from '../core/paths';
import { initBackend } from '../evaluator/backend';
import { trainSize } from '../evaluator/evaluate';
import { profileSettings } from '../evaluator/profiles';
import { prepareData } from '../evaluator/data/prepare';
import { parseEngineChoice } from '../engine/run';

const SHAPE: TraceShape = { batch: 2, seqLen: 8, dModel: 8, nHeads: 2 };
const PROGRAMS: [string, string][] = [...FRAMEWORKS.map((f) => [f, baselineBlock(f)] as [string, string]), ...CATALOGUE.map((v) => [v.id, v.block] as [string, string])];
/**
 * Baselines and seven catalogue programs that between them use every kernel family (Softplus, Softmax, Elu,
 * Maximum/Tile, Cumsum/ExpandDims). Not mm-ssd or ttr-gated-linear: their RMS-normalised unnormalised
 * fits amplify float32 rounding so much that torch alone, float32 against float64, differs by ~1e-2 nats
 * within 20 steps; no two float32 engines can agree on them to 1e-4.
 */
const PARITY_IDS = [...FRAMEWORKS, 'cd-stick-breaking', 'cd-differential', 'cd-forgetting-gate', 'ttr-linear-kernel', 'ttr-ridge', 'mm-hyena', 'mm-forgetting-semiseparable'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-engine-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
// In-process recordings need tfjs's backend; traceBlock sets it itself, recordBlock does not.
before(() => initBackend());

const block = (body: string) => `function attention(tf, ctx, x) {\n${body}\n}\n`;
const WQKV = `const [B, T, D] = x.shape; const W = ctx.param('W', [D, D], 'glorot');
  const y = tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), W), [B, T, D]);`;

async function refusal(body: string): Promise<string> {
  await assert.rejects(traceBlock({ block: block(body), shapes: [SHAPE] }), (err: unknown) => err instanceof ProgramRejected && err.check === 'trace');
  return traceBlock({ block: block(body), shapes: [SHAPE] }).then(() => '', (err: Error) => err.message);
}

test('a block traces to a graph of its kernels, params with their init spec, the causal mask and folded constants', async () => {
  const { graphs } = await traceBlock({ block: baselineBlock('coefficient_dynamics'), shapes: [SHAPE, { ...SHAPE, seqLen: 4 }] });
  assert.equal(graphs.length, 2);
  const g = graphs[0];
  assert.deepEqual(g.shape, SHAPE);
  assert.deepEqual(g.params.map((p) => [p.name, g.nodes[p.node]]), [['Wqkv', { op: 'Param', name: 'Wqkv', init: 'glorot', out: { shape: [8, 24], dtype: 'float32' } }]]);
  assert.deepEqual(g.nodes.filter((n) => n.op === 'Input').map((n) => (n as { name: string }).name), ['x', 'causalMask']);
  // 1/√d and the −1e9 mask scale travel as values; no kernel runs on constants alone.
  assert.ok(g.nodes.some((n) => n.op === 'Const'));
  assert.deepEqual(g.kernels, ['Add', 'BatchMatMul', 'Exp', 'Max', 'Multiply', 'RealDiv', 'Reshape', 'SplitV', 'Sub', 'Sum', 'Transpose']);
  assert.notEqual(graphs[1].hash, g.hash, 'each training shape has its own graph');
  assert.equal(checkGraph(JSON.parse(JSON.stringify(g)), SHAPE).hash, g.hash);
});

test('constant subgraphs are folded to values: kernels on literals alone (tf.range, scalars) leave no kernel node', async () => {
  const { graphs } = await traceBlock({ block: block(`${WQKV}\n  const T2 = tf.mul(tf.add(tf.range(0, T), 1), 0.5);\n  return tf.mul(y, tf.reshape(T2, [1, T, 1]));`), shapes: [SHAPE] });
  const kernels = graphs[0].nodes.filter((n) => n.op === 'Kernel').map((n) => (n as { kernel: string }).kernel);
  assert.deepEqual(kernels, ['Reshape', 'BatchMatMul', 'Reshape', 'Multiply']);
});

test('a block using a kernel the engine lacks is refused with the kernel\'s name', async () => {
  const message = await refusal(`${WQKV}\n  return tf.atan2(y, tf.add(y, 3));`);
  assert.match(message, /kernel Atan2, which the torch engine does not implement/);
});

test('a block that reads tensor values back (dataSync) is refused: its graph would depend on the data', async () => {
  const message = await refusal(`${WQKV}\n  return y.dataSync()[0] > 0 ? y : tf.neg(y);`);
  assert.match(message, /reads tensor values with dataSync\(\)/);
});

test('a block whose kernel graph changes between two traces is refused', async () => {
  const message = await refusal(`${WQKV}\n  attention.calls = (attention.calls || 0) + 1;\n  return attention.calls % 2 ? y : tf.neg(y);`);
  assert.match(message, /kernel graph changes with its input values/);
});

test('tracing runs the candidate in the sandbox; graphs are checked and stored under their content hash', async () => {
  const [graph] = await traceProgram(baselineBlock('matrix_mixer'), [SHAPE], path.join(tmp, 'scratch'), { wallTimeoutMs: 120_000 });
  const file = storeGraph(path.join(tmp, 'graphs'), graph);
  assert.equal(path.basename(file), `${graph.hash}.json`);
  assert.equal(checkGraph(JSON.parse(fs.readFileSync(file, 'utf8')), SHAPE).hash, graph.hash);
  const tampered = { ...graph, nodes: graph.nodes.slice(0, -1) };
  assert.throws(() => checkGraph(tampered, SHAPE), /refers to a missing value|hash does not match|output is/);
  await assert.rejects(traceProgram(block('return tf.sin(x);'), [SHAPE], path.join(tmp, 'scratch'), { wallTimeoutMs: 120_000 }), /kernel Sin/);
});

test('every kernel of the baselines and the 30 catalogue programs is supported and has a kernel parity case', () => {
  const used = new Set<string>();
  for (const [id, code] of PROGRAMS) {
    const run = recordBlock(compileAttention(code), SHAPE, 99);
    run.graph.kernels.forEach((k) => used.add(k));
    run.x.dispose();
    run.mask.dispose();
    run.store.dispose();
    assert.ok(run.graph.kernels.length > 0, id);
  }
  const cased = new Set(KERNEL_CASES.map((c) => c.kernel));
  for (const k of used) assert.ok((SUPPORTED_KERNELS as readonly string[]).includes(k) && cased.has(k), `kernel ${k}`);
  for (const k of SUPPORTED_KERNELS) assert.ok(cased.has(k), `supported kernel ${k} has no parity case`);
  assert.equal(tf.memory().numTensors < 1000, true);
});

test('EVOSCALE_PYTHON naming an interpreter without torch fails in one line', async () => {
  await assert.rejects(findTorchPython({ EVOSCALE_PYTHON: path.join(tmp, 'no-such-python') }), (err: Error) => /^EVOSCALE_PYTHON=.*no-such-python: /.test(err.message) && !err.message.includes('\n'));
});

test('the torch engine matches tfjs: every kernel (1e-5), every catalogue graph, 20 training steps of 10 programs (1e-4), compiled too where torch has torch.compile, and a killed run resumes bit-identically', async () => {
  const parity = PARITY_IDS.map((id) => PROGRAMS.find(([p]) => p === id)!);
  const { file } = await writeEngineFixtures(tmp, PROGRAMS, parity, SUPPORTED_KERNELS);
  const { python } = await findTorchPython();
  // One Python process runs every engine test (stdlib unittest): torch starts once.
  const r = spawnSync(python, ['-m', 'unittest', 'discover', '-v', '-s', path.join(enginePackageDir, 'tests'), '-t', enginePackageDir], {
    cwd: enginePackageDir,
    env: { ...process.env, PYTHONPATH: enginePackageDir, EVOSCALE_ENGINE_FIXTURES: file, OMP_NUM_THREADS: '1' },
    encoding: 'utf8',
    // torch 2.x adds a torch.compile run (C++ code generation; minutes on a loaded two-core machine).
    timeout: 900_000,
  });
  assert.equal(r.status, 0, `python engine tests failed:\n${r.stderr.slice(-6000)}`);
  assert.match(r.stderr, /Ran \d+ tests/);
  // Only the checks a machine cannot make are skipped (CUDA present, torch.compile present).
  assert.doesNotMatch(r.stderr, /skipped '(?!this machine has CUDA|this torch has (no )?torch.compile)/);
});

test('EVOSCALE_ENGINE=torch: a training traces its program, runs on the torch engine, resumes after a cancel from its checkpoint and is cached', async () => {
  process.env.EVOSCALE_HOME = path.join(tmp, 'home');
  const micro = profileSettings('micro');
  const settings = { ...micro, sizes: micro.sizes.slice(0, 1) };
  const data = await prepareData(settings.data);
  const program = baselineProgram('test_time_regression');
  const env = { EVOSCALE_ENGINE: 'torch', CUDA_VISIBLE_DEVICES: '' };
  const abort = new AbortController();
  const events: string[] = [];
  await assert.rejects(
    trainSize(program, settings.sizes[0], settings, data, 1234, {
      env,
      signal: abort.signal,
      onProgress: (p) => {
        events.push(p.event);
        if (p.event === 'checkpoint') abort.abort();
      },
    }),
    /cancelled/,
  );
  assert.ok(events.includes('checkpoint'));
  const resumed = await trainSize(program, settings.sizes[0], settings, data, 1234, { env });
  assert.equal(resumed.backend, 'torch-cpu');
  assert.equal(resumed.cached, false);
  assert.ok(resumed.resumedFromStep >= settings.training.checkpointEvery && resumed.resumedFromStep < settings.training.steps, `resumed from ${resumed.resumedFromStep}`);
  assert.ok(resumed.valLoss < Math.log(settings.data.vocabSize), `val loss ${resumed.valLoss}`);
  const again = await trainSize(program, settings.sizes[0], settings, data, 1234, { env });
  assert.equal(again.cached, true);
  assert.equal(again.valLoss, resumed.valLoss);
  assert.throws(() => parseEngineChoice('jax'), /unknown engine "jax" \(expected auto, tfjs, torch\)/);
});

test('a torch training child dies with the process that started it, even by SIGKILL: no orphan trains on beside the retry', async () => {
  const dir = path.join(tmp, 'orphan');
  fs.mkdirSync(dir, { recursive: true });
  const shape: TraceShape = { batch: PARITY_TRAINING.batchSize, seqLen: PARITY_MODEL.seqLen, dModel: PARITY_MODEL.dModel, nHeads: PARITY_MODEL.nHeads };
  const run = recordBlock(compileAttention(baselineBlock('coefficient_dynamics')), shape, 5);
  const graph = storeGraph(dir, run.graph);
  run.x.dispose();
  run.mask.dispose();
  run.store.dispose();
  const tokens = Int32Array.from({ length: 500 }, (_, i) => (i * 7) % PARITY_MODEL.vocabSize);
  writeTokenFile(path.join(dir, 'train.tok'), tokens, PARITY_MODEL.vocabSize);
  const job = {
    graph, model: PARITY_MODEL, training: { ...PARITY_TRAINING, steps: 1_000_000, evalEvery: 1_000_000 }, seed: 1, device: 'cpu', precision: 'fp32', compile: false, threads: 1,
    trainPath: path.join(dir, 'train.tok'), valPath: path.join(dir, 'train.tok'), checkpointPath: path.join(dir, 'checkpoint.pt'),
  };
  const script = `require(${JSON.stringify(path.join(repoRoot, 'dist', 'engine', 'run.js'))}).trainWithTorch(JSON.parse(process.argv[1]), { wallTimeoutMs: 600000, onProgress: (p) => p.event === 'start' && console.log('started') });`;
  const parent = spawn(process.execPath, ['-e', script, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => parent.stdout!.on('data', (d) => String(d).includes('started') && resolve()));
  const engineAlive = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path.join(dir, 'torch-job.json'));
    } catch {
      return false;
    }
  });
  assert.ok(engineAlive(), 'the engine runs while its parent lives');
  const gone = new Promise((r) => parent.once('exit', r));
  parent.kill('SIGKILL');
  await gone;
  for (let i = 0; i < 50 && engineAlive(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(engineAlive(), false, 'the engine outlived its parent');
});

test('the GPU check dry-runs on a CPU: its plan, each phase for every size, a projected iteration, variants this host lacks skipped with the reason; bad input fails in one line', async () => {
  const folder = path.join(tmp, 'gpu-check');
  const prepared = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'scripts', 'gpu-check-prepare.js'), '--profile', 'micro', '--out', folder], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(prepared.status, 0, prepared.stderr);
  const { python } = await findTorchPython();
  const script = path.join(repoRoot, 'scripts', 'gpu-check.py');
  const sizes = ['d8-L1-H2', 'd16-L1-H2'];
  const r = spawnSync(python, [script, folder, '--device', 'cpu', '--steps', '2', '--concurrent-steps', '2', '--sizes', sizes.join(',')], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const out = r.stdout;
  assert.match(out, /^plan \(budget 570 s;/m);
  for (const phase of ['1. ms/step', '2. one iteration', '3. first 10 losses', '4. torch.compile and CUDA graphs']) assert.ok(out.includes(phase), phase);
  for (const size of sizes) {
    for (const precision of ['fp32', 'tf32', 'bf16']) assert.match(out, new RegExp(`^  ${size} +${precision} +[\\d.]+ ms/step`, 'm'));
    assert.match(out, new RegExp(`^  ${size} +(fp32|tf32|bf16) +[\\d.]+ ms/step with 2 at once .* → 40 steps in`, 'm'));
    assert.match(out, new RegExp(`^  ${size} +cpu( [\\d.]+){10}$`, 'm'));
  }
  assert.match(out, /one iteration \(2 sizes × 40 steps, one seed each, at once\): [\d.]+ min$/m);
  assert.match(out, /max \|Δ\| 0\.00e\+00/);
  assert.match(out, /bf16 \+cudagraphs: skipped: (CUDA graphs need a CUDA device|torch \S+ has no torch\.compile)/);
  assert.doesNotMatch(out, /failed:/);
  // A size whose graph the engine refuses fails each of its variants in one line; the rest of the check runs.
  const broken = path.join(tmp, 'gpu-check-broken');
  fs.cpSync(folder, broken, { recursive: true });
  const graphFile = path.join(broken, 'graphs', 'd16-L1-H2.json');
  const graph = JSON.parse(fs.readFileSync(graphFile, 'utf8'));
  graph.nodes.find((n: { op: string }) => n.op === 'Kernel').kernel = 'Atan2';
  fs.writeFileSync(graphFile, JSON.stringify(graph));
  const partial = spawnSync(python, [script, broken, '--device', 'cpu', '--steps', '1', '--concurrent-steps', '1', '--sizes', sizes.join(',')], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(partial.status, 0, partial.stderr.slice(-3000));
  for (const precision of ['fp32', 'tf32', 'bf16']) {
    assert.match(partial.stdout, new RegExp(`^  d8-L1-H2 +${precision} +[\\d.]+ ms/step`, 'm'));
    assert.match(partial.stdout, new RegExp(`^  d16-L1-H2 ${precision}: failed: EngineError: .*kernel Atan2`, 'm'));
  }
  assert.match(partial.stdout, /^  one iteration: failed: RuntimeError: the d16-L1-H2 process failed: .*kernel Atan2/m);
  assert.match(partial.stdout, /^  d8-L1-H2 +cpu( [\d.]+){10}$/m);
  assert.match(partial.stdout, /^gpu-check: done in \d+ s$/m);
  for (const [args, why] of [[[path.join(tmp, 'nowhere')], /holds no check\.json/], [[folder], /sees no CUDA device/], [[folder, '--device', 'cpu', '--sizes', 'd9'], /no size d9/]] as const) {
    const bad = spawnSync(python, [script, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CUDA_VISIBLE_DEVICES: '' } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr.trim(), new RegExp(`^gpu-check: .*${why.source}`));
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  }
});
