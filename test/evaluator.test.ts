// Specification of the evaluator: the candidate's own code is what trains, bad programs are
// refused before training with one-line reasons, and an interrupted training resumes exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { baselineProgram, makeProgram, FRAMEWORKS } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { evaluateProgram, trainSize, trainingDir, trainingKey } from '../evaluator/evaluate';
import { prepareData } from '../evaluator/data/prepare';
import { wasmCapacityProblem } from '../evaluator/backend';
import { repoRoot } from '../core/paths';
import { resolveEngine } from '../engine/run';
import { DEFAULT_FITNESS, selectAgainstParent } from '../score/select';
import { controlBlock, controlPath } from './helpers/controls';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-eval-'));
before(() => {
  process.env.EVOSCALE_HOME = home;
});
after(() => fs.rmSync(home, { recursive: true, force: true }));

// Three of smoke's seeds keep the suite short; the README's measurements use them all.
const smoke = { ...profileSettings('smoke'), seeds: profileSettings('smoke').seeds.slice(0, 3) };

for (const framework of FRAMEWORKS) {
  test(`the ${framework} baseline trains on the smoke profile to a loss well below ln(vocabulary)`, async () => {
    const leaks: number[][] = [];
    // Every seed and size for the baseline the known-answer tests below score against; for the
    // others, one seed and the two smallest sizes show that they train.
    const settings = framework === 'coefficient_dynamics' ? smoke : { ...smoke, seeds: smoke.seeds.slice(0, 1), sizes: smoke.sizes.slice(0, 2) };
    const r = await evaluateProgram(baselineProgram(framework), settings, {
      onProgress: (p) => {
        if (p.event === 'eval' && p.tensors !== undefined) (leaks[smoke.sizes.findIndex((s) => s.name === p.size)] ??= []).push(p.tensors);
      },
    });
    const chance = Math.log(smoke.data.vocabSize);
    assert.equal(r.points.length, settings.sizes.length);
    for (const p of r.points) {
      assert.equal(p.steps, smoke.training.steps);
      assert.ok(p.valLoss < chance - 1, `${p.size}: val loss ${p.valLoss} is not well below ln V = ${chance.toFixed(3)}`);
      assert.ok(p.nonEmbeddingParams < p.totalParams);
    }
    // Loss falls with size: the fit's slope is negative, so the seed's fitness is positive.
    assert.ok(r.score.fit.slope < 0, `slope ${r.score.fit.slope} should be negative`);
    assert.ok(r.score.seedSlope.fitness > 0);
    // The baseline scored against itself is exactly 0, with a degenerate interval.
    assert.equal(r.score.fitness, 0);
    assert.deepEqual(r.score.fitnessCi, [0, 0]);
    // No tensor leaks: the live-tensor count is the same at every evaluation of a size.
    for (const counts of leaks.filter(Boolean)) assert.equal(new Set(counts).size, 1, `tensor count changed across steps: ${counts}`);
  });
}

// Known answers for the number that decides: what is worse must score worse, with confidence, and
// what is the same function must not be called better.
// Smoke's two smallest sizes (the baseline's trainings are cache hits from above) keep the suite short: the
// controls are worse at every size, by most at these two; `npm run bench:fitness` shows all four with six seeds.
for (const name of ['causal-mean', 'self-only'] as const) {
  test(`the fitness ranks the ${name} control below softmax, with an interval below 0, and selection refuses it`, async () => {
    const r = await evaluateProgram(makeProgram('coefficient_dynamics', controlBlock(name)), { ...smoke, sizes: smoke.sizes.slice(0, 2) });
    assert.ok(r.baseline.runs.every((run) => run.cached), 'the baseline trained once, above');
    assert.notEqual(r.programHash, r.baseline.programHash);
    assert.equal(r.score.fitnessMode, DEFAULT_FITNESS.mode);
    const [lo, hi] = r.score.fitnessCi;
    assert.ok(r.score.fitness < 0 && hi < 0, `${name}: fitness ${r.score.fitness} [${lo}, ${hi}] should lie below 0`);
    const selection = selectAgainstParent(r.points, r.baseline.points, r.baseline.points, smoke.fitAxis, DEFAULT_FITNESS);
    assert.equal(selection.accept, false);
    assert.match(selection.decision, /^worse than the parent: Δ −/);
  });
}

test('a numerically different copy of the baseline (q and k each scaled by d^−¼) gets an interval containing 0 and is not accepted over it', async () => {
  // Smoke's middle sizes, d24 and d40: at d16 and d64 a head is 16 wide, where d^−¼ = ½ is exact and
  // the copy trains bit-identically to the baseline. Two sizes (the baseline's trainings are cache
  // hits from above) keep the suite short; `npm run bench:fitness` shows the same at every size.
  const r = await evaluateProgram(makeProgram('coefficient_dynamics', controlBlock('baseline-split-scale')), { ...smoke, sizes: smoke.sizes.slice(1, 3) });
  assert.ok(r.points.some((p, i) => p.valLossBySeed.some((v, k) => v !== r.baseline.points[i].valLossBySeed[k])), 'numerically different from the baseline');
  assert.notEqual(r.programHash, r.baseline.programHash, 'a different program');
  const [lo, hi] = r.score.fitnessCi;
  assert.ok(lo <= 0 && 0 <= hi, `fitness ${r.score.fitness} [${lo}, ${hi}] should contain 0`);
  assert.ok(r.baseline.runs.every((run) => run.cached), 'the baseline trained once, above');
  const selection = selectAgainstParent(r.points, r.baseline.points, r.baseline.points, smoke.fitAxis, DEFAULT_FITNESS);
  assert.equal(selection.accept, false, selection.decision);
  assert.match(selection.decision, /^not distinguishable from the parent/);
});

for (const backend of ['wasm', 'cpu']) {
  test(`a training run killed after a checkpoint resumes from it and ends with the same loss as an uninterrupted run (${backend} backend, bit-identical)`, async () => {
    const settings = profileSettings('micro');
    settings.dropout = 0.1; // resume must reproduce the dropout masks too
    // tfjs's cpu backend is several times slower than wasm: a shorter run shows the same.
    const steps = backend === 'cpu' ? 24 : 40;
    settings.training = { ...settings.training, steps, checkpointEvery: steps / 4, evalEvery: steps / 2 };
    const size = settings.sizes[0];
    const program = baselineProgram('coefficient_dynamics');
    const env = { EVOSCALE_BACKEND: backend };
    const homes = [fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-resume-')), fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-straight-'))];
    try {
      // Interrupted: kill the training child as soon as its second checkpoint is on disk.
      process.env.EVOSCALE_HOME = homes[0];
      const data = await prepareData(settings.data);
      const abort = new AbortController();
      await assert.rejects(
        trainSize(program, size, settings, data, settings.seeds[0], {
          env,
          signal: abort.signal,
          onProgress: (p) => {
            if (p.event === 'checkpoint' && p.step >= steps / 2) abort.abort();
          },
        }),
      );
      const ckpt = path.join(trainingDir(trainingKey(program.hash, size, settings, data.hash, settings.seeds[0])), 'checkpoint.bin');
      assert.ok(fs.existsSync(ckpt), 'checkpoint written before the kill');
      const resumed = await trainSize(program, size, settings, data, settings.seeds[0], { env });
      assert.ok(resumed.resumedFromStep >= steps / 2, `resumed from step ${resumed.resumedFromStep}`);
      assert.equal(resumed.backend, backend);

      // Uninterrupted: the same job in a fresh state folder.
      process.env.EVOSCALE_HOME = homes[1];
      const straight = await trainSize(program, size, settings, await prepareData(settings.data), settings.seeds[0], { env });
      assert.equal(straight.resumedFromStep, 0);
      assert.equal(resumed.valLoss, straight.valLoss, 'bit-identical final validation loss');
    } finally {
      process.env.EVOSCALE_HOME = home;
      for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
    }
  });
}

function evo(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, EVOSCALE_HOME: home, ...extraEnv },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeFixture(name: string, text: string): string {
  const file = path.join(home, name);
  fs.writeFileSync(file, text);
  return file;
}

test('a leaking (non-causal) block is refused before training, saying so', () => {
  const before = fs.existsSync(path.join(home, 'cache', 'train')) ? fs.readdirSync(path.join(home, 'cache', 'train')).length : 0;
  const r = evo(['evaluate', '--framework', 'coefficient_dynamics', '--program', controlPath('noncausal-coefficient_dynamics'), '--profile', 'micro']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /causal/i);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const afterCount = fs.existsSync(path.join(home, 'cache', 'train')) ? fs.readdirSync(path.join(home, 'cache', 'train')).length : 0;
  assert.equal(afterCount, before, 'nothing was trained');
});

test('a block with a syntax error or the wrong output shape gets a one-line error naming the problem', () => {
  const fixtures = path.join(repoRoot, 'test', 'fixtures', 'programs');
  const syntax = evo(['evaluate', '--framework', 'matrix_mixer', '--program', path.join(fixtures, 'syntax_error.ts'), '--profile', 'micro']);
  assert.equal(syntax.code, 2);
  assert.match(syntax.stderr, /syntax/i);
  const shape = evo(['evaluate', '--framework', 'test_time_regression', '--program', path.join(fixtures, 'wrong_shape.ts'), '--profile', 'micro']);
  assert.equal(shape.code, 2);
  assert.match(shape.stderr, /shape/i);
  for (const r of [syntax, shape]) assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
});

test('evo evaluate --json prints per-size points by seed, the fit, the fitness with its interval and the seed slope beside it', () => {
  const r = evo(['evaluate', '--framework', 'matrix_mixer', '--profile', 'micro', '--seeds', '2', '--fitness', 'param_multiplier', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.framework, 'matrix_mixer');
  assert.match(out.programHash, /^[0-9a-f]{16}$/);
  assert.equal(out.points.length, 3);
  assert.deepEqual(out.seeds, [1234, 1235]);
  for (const p of out.points) {
    for (const k of ['size', 'nonEmbeddingParams', 'totalParams', 'valLoss', 'steps', 'msPerStep', 'peakBytes']) assert.ok(k in p, k);
    assert.equal(p.valLossBySeed.length, 2);
    assert.equal(p.valLoss, (p.valLossBySeed[0] + p.valLossBySeed[1]) / 2);
  }
  for (const k of ['intercept', 'slope', 'r2', 'slopeStdErr']) assert.ok(k in out.fit, k);
  // The baseline evaluated: it is its own reference, so every relative fitness is exactly 0.
  assert.equal(out.baseline.programHash, out.programHash);
  assert.equal(out.fitnessMode, 'param_multiplier');
  assert.equal(out.fitness, 0);
  assert.deepEqual(out.fitnessCi, [0, 0]);
  assert.equal(out.seedSlope.fitness, -out.fit.slope);
  assert.ok(out.seedSlope.ci[0] <= out.seedSlope.ci[1]);
  assert.ok(out.data.passes > 0);
  // Off a terminal, progress is plain lines on stderr: no bars, no cursor movement.
  assert.doesNotMatch(r.stderr, /\x1b|\[#+\.*\]/);
  for (const size of ['d8-L1-H2', 'd16-L1-H2', 'd24-L1-H2']) {
    for (const seed of [1234, 1235]) assert.match(r.stderr, new RegExp(`^\\[${size} seed ${seed}\\] step 40/40  train \\d+\\.\\d{4}  val \\d+\\.\\d{4}$`, 'm'));
  }
});

test('evo evaluate on a terminal draws a progress bar per training, redrawn in place, then prints its table', () => {
  // `script` runs the CLI under a pseudo-terminal, as a user's shell would; stdout and stderr both land in its output.
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, path.join(repoRoot, 'dist', 'cli', 'evo.js'), 'evaluate', '--framework', 'test_time_regression', '--profile', 'micro', '--seeds', '1'].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, EVOSCALE_HOME: home }, timeout: 300_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const screen = r.stdout.replace(/\r/g, '');
  // The block of bars moves up over itself (CSI n F) and clears below (CSI 0 J) before each redraw.
  assert.match(screen, /\x1b\[[1-3]F\x1b\[0J/);
  // Its last drawing: every size's training finished, with its last losses (in the order they started).
  const last = screen.slice(screen.lastIndexOf('\x1b[0J') + 4).split('\n');
  for (const size of ['d8-L1-H2', 'd16-L1-H2', 'd24-L1-H2']) {
    const i = last.slice(0, 3).findIndex((l) => l.startsWith(`${size} `));
    assert.ok(i >= 0, `${size} in\n${last.slice(0, 3).join('\n')}`);
    assert.match(last[i], new RegExp(`^${size} seed 1234 +\\[#{12}\\]  40/40  done        train \\d+\\.\\d{4}  val \\d+\\.\\d{4}$`), last[i]);
  }
  assert.match(last[3], /^framework test_time_regression /);
  assert.doesNotMatch(screen, /\] step \d+\/40/, 'no plain progress lines on a terminal');
});

test('bad --seeds and --fitness values are one-line errors', () => {
  for (const [args, pattern] of [
    [['--seeds', '0'], /--seeds: a count from 1 to 64/],
    [['--seeds', '1,1'], /seeds repeat: 1, 1/],
    [['--fitness', 'vibes'], /--fitness must be one of slope, loss_delta, param_multiplier, extrapolated/],
  ] as const) {
    const r = evo(['evaluate', '--framework', 'matrix_mixer', '--profile', 'micro', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

test('a missing corpus path is a one-line error and leaves the data cache intact', () => {
  const cache = path.join(home, 'cache', 'data');
  const listing = () => (fs.existsSync(cache) ? fs.readdirSync(cache).sort().join(',') : '');
  const beforeList = listing();
  const r = evo(['evaluate', '--framework', 'coefficient_dynamics', '--profile', 'micro', '--corpus', path.join(home, 'no-such-corpus.txt')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /does not exist/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.equal(listing(), beforeList);
});

test('unknown frameworks, profiles and commands are one-line errors that name the choices', () => {
  const fw = evo(['start', '--framework', 'attention_is_all', '--profile', 'smoke']);
  assert.equal(fw.code, 2);
  assert.match(fw.stderr, /unknown framework "attention_is_all" \(expected one of: coefficient_dynamics, test_time_regression, matrix_mixer\)/);
  const profile = evo(['evaluate', '--framework', 'matrix_mixer', '--profile', 'huge']);
  assert.equal(profile.code, 2);
  assert.match(profile.stderr, /unknown profile "huge" \(expected one of: full, smoke, micro\)/);
  const config = evo(['start', '--framework', 'matrix_mixer', '--config', writeFixture('bad.yaml', 'max_iterations: 3\nllm:\n  temprature: 0.5\n')]);
  assert.equal(config.code, 2);
  assert.match(config.stderr, /bad\.yaml:3: unknown key "llm\.temprature"/);
  for (const r of [fw, profile, config]) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('a shape past the wasm heap is refused before training, with the fix named: the full profile, and the measured boundary', () => {
  const full = profileSettings('full');
  const problem = wasmCapacityProblem('d96-L4-H4', full.training.batchSize, full.seqLen, full.data.vocabSize);
  assert.match(problem ?? '', /^tfjs on wasm cannot train d96-L4-H4 at batch 64 × 128 tokens × 16,384 ids: a step needs about 8\.3 GiB .*torch engine \(EVOSCALE_ENGINE=torch\)/);
  // Measured: batch 16 trained (2,104 MiB of tensors at its peak), batch 32 aborted the wasm heap.
  assert.equal(wasmCapacityProblem('d96-L4-H4', 16, 128, 16_384), null);
  assert.notEqual(wasmCapacityProblem('d96-L4-H4', 32, 128, 16_384), null);
  for (const name of ['smoke', 'micro']) {
    const p = profileSettings(name);
    assert.equal(wasmCapacityProblem(p.sizes[p.sizes.length - 1].name, p.training.batchSize, p.seqLen, 300), null, name);
  }
});

test('on a CPU host, auto trains a shape tfjs-wasm cannot hold on torch where torch imports, else on tfjs, which refuses it in one line', async () => {
  // The measured boundary: batch 16 trained on wasm, batch 32 aborted its heap.
  const fits = wasmCapacityProblem('d96-L4-H4', 16, 128, 16_384);
  const past = wasmCapacityProblem('d96-L4-H4', 32, 128, 16_384);
  const cpu = { CUDA_VISIBLE_DEVICES: '' };
  assert.equal(await resolveEngine('auto', cpu, fits), 'tfjs');
  assert.equal(await resolveEngine('auto', cpu, past), 'torch');
  // An interpreter without torch: auto stays on tfjs, where trainSize refuses the shape with `past`'s line.
  assert.equal(await resolveEngine('auto', { ...cpu, EVOSCALE_PYTHON: '/bin/false' }, past), 'tfjs');
  assert.match(past ?? '', /EVOSCALE_ENGINE=torch/);
  // Asked for by name, an engine is what trains.
  assert.equal(await resolveEngine('tfjs', cpu, past), 'tfjs');
});
