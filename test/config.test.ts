// The run configs: the shipped YAMLs validate, every mistake is one line naming the key and its line,
// and profiles, evaluator.init_args and the command line combine in the documented order.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { requestedEngine } from '../engine/run';
import { EvoError } from '../core/errors';
import { baselineBlock, FRAMEWORKS } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { buildPrompt } from '../propose/llm/prompt';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SHIPPED = fs.readFileSync(defaultConfigPath('coefficient_dynamics'), 'utf8');

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** 1-based line of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `${needle} is in the text`);
  return i + 1;
}

function configError(file: string, overrides = {}): ConfigError {
  try {
    loadRunConfig(file, overrides);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.code, 'BAD_CONFIG');
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail('expected a ConfigError');
}

const MINIMAL = `framework: matrix_mixer
max_iterations: 4
llm:
  primary_model: local-model
prompt:
  system_message: Evolve the mixer.
evaluator:
  profile: smoke
  init_args:
    training_steps: 123
    batch_size: 4
    corpus: [data/a.txt, /abs/b.txt]
    model_sizes:
      - {d_model: 8, n_layers: 1, n_heads: 2}
      - {d_model: 12, n_layers: 2, n_heads: 3, name: mid}
`;

describe('shipped configs', () => {
  for (const framework of FRAMEWORKS) {
    test(`configs/${framework}.yaml loads with the seed's settings`, () => {
      const cfg = loadRunConfig(defaultConfigPath(framework));
      assert.equal(cfg.framework, framework);
      assert.equal(cfg.iterations, 35);
      assert.deepEqual(cfg.evolution, { checkpointInterval: 5, populationSize: 1, saveAllPrograms: true });
      assert.equal(cfg.evaluator.profile, 'full');
      assert.deepEqual(
        [cfg.evaluator.training.steps, cfg.evaluator.training.evalEvery, cfg.evaluator.training.batchSize, cfg.evaluator.training.learningRate, cfg.evaluator.training.warmupSteps],
        [100_000, 5000, 64, 0.001, 1000],
      );
      assert.deepEqual(cfg.evaluator.sizes.map((s) => s.name), ['d96-L4-H4', 'd128-L4-H4', 'd128-L6-H4', 'd192-L6-H6']);
      assert.deepEqual(cfg.mutation, { provider: 'offline', maxAttempts: 3 });
      assert.deepEqual(cfg.validation, { timeMultiple: 8, wallTimeoutS: 300 });
      assert.deepEqual(cfg.evaluator.engine, { engine: 'auto', precision: 'fp32', compile: false });
      assert.equal(cfg.llm.primaryModel, 'gpt-5');
      assert.equal(cfg.llm.fallbackModel, 'gpt-4.1');
      assert.equal(cfg.llm.temperature, 0.8);
      assert.equal(cfg.llm.maxTokens, 16000);
      assert.ok(cfg.llm.prices['gpt-5'] && cfg.llm.prices['gpt-4.1']);
      assert.equal(cfg.prompt.replyFormat, 'diff');
      assert.deepEqual(cfg.notices, []);
      for (const section of ['WHAT CAN BE EVOLVED', 'WHAT MUST BE PRESERVED', 'WHAT CANNOT BE MODIFIED', 'TFJS PITFALLS']) {
        assert.ok(cfg.prompt.systemMessage.includes(section), `${section} in the system message`);
      }
      assert.match(cfg.prompt.systemMessage, /function attention\(tf, ctx, x\)/);
      assert.match(cfg.prompt.systemMessage, /tf\.neg\(tf\.softplus\(tf\.neg\(z\)\)\)/);
      assert.match(cfg.prompt.systemMessage, /tf\.broadcastTo/);
      assert.match(cfg.prompt.systemMessage, /tf\.gather/);
      const { user } = buildPrompt(
        { framework, parentBlock: baselineBlock(framework), iteration: 1, seed: 1, history: [] },
        cfg.prompt,
      );
      assert.doesNotMatch(user, /\{[a-z_]+\}/, 'every template field is filled');
    });
  }
});

describe('errors name the key and its line', () => {
  test('an unknown (misspelt) key', () => {
    const text = SHIPPED.replace('  temperature: 0.8', '  temprature: 0.8');
    const err = configError(write('typo.yaml', text));
    const line = lineOf(text, 'temprature:');
    assert.match(err.message, new RegExp(`typo\\.yaml:${line}: unknown key "llm\\.temprature" \\(did you mean "temperature"\\?\\)$`));
    assert.deepEqual(err.issues.map((i) => [i.key, i.line]), [['llm.temprature', line]]);
  });

  test('a wrong type', () => {
    const text = SHIPPED.replace('  max_tokens: 16000', '  max_tokens: "lots"');
    const err = configError(write('type.yaml', text));
    assert.match(err.message, new RegExp(`type\\.yaml:${lineOf(text, 'max_tokens: "lots"')}: "llm\\.max_tokens" must be a number, got string "lots"$`));
  });

  test('nested keys, list items, enums, template fields, secrets and missing keys', () => {
    const text = SHIPPED.replace('    batch_size: 64', '    batch_size: 64\n    api_key: sk-should-not-be-here')
      .replace('{d_model: 128, n_layers: 6, n_heads: 4}', '{d_model: 128, n_layers: 6, n_heads: 5}')
      .replace('  reply_format: diff', '  reply_format: patch');
    const err = configError(write('many.yaml', text));
    const byKey = new Map(err.issues.map((i) => [i.key, i]));
    assert.equal(byKey.get('evaluator.init_args.api_key')?.line, lineOf(text, 'api_key:'));
    assert.match(byKey.get('evaluator.init_args.api_key')!.message, /API keys never go in a config file/);
    assert.equal(byKey.get('prompt.reply_format')?.line, lineOf(text, 'reply_format: patch'));
    assert.match(byKey.get('prompt.reply_format')!.message, /must be one of diff, block, got "patch"/);
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /many\.yaml:\d+: "prompt\.reply_format" .*; .*many\.yaml:\d+: "evaluator\.init_args\.api_key"/);

    const four = configError(write('four.yaml', text.replace('  max_tokens: 16000', '  max_tokens: 0').replace('  timeout_s: 600', '  timeout_s: soon')));
    assert.equal(four.issues.length, 4);
    assert.match(four.message, /; and 1 more problem$/);

    const template = configError(write('template.yaml', SHIPPED.replace('    {reply_instructions}', '    {reply_instruction}')));
    assert.deepEqual(template.issues.map((i) => [i.key, i.line]), [
      ['prompt.user_template', lineOf(SHIPPED, 'user_template:')],
      ['prompt.user_template', lineOf(SHIPPED, 'user_template:')],
    ]);
    assert.match(template.issues[0].message, /unknown template field \{reply_instruction\}/);
    assert.match(template.issues[1].message, /must contain the template field \{reply_instructions\}/);

    const sizes = configError(write('sizes.yaml', SHIPPED.replace('{d_model: 128, n_layers: 6, n_heads: 4}', '{d_model: 128, n_layers: 6, n_heads: 5}')));
    assert.deepEqual(
      sizes.issues.map((i) => [i.key, i.line]),
      [['evaluator.init_args.model_sizes[2].n_heads', lineOf(SHIPPED, '{d_model: 128, n_layers: 6, n_heads: 4}')]],
    );
    assert.match(sizes.message, /must divide d_model/);

    const missing = configError(write('missing.yaml', 'framework: matrix_mixer\nmax_iterations: 2\nllm:\n  temperature: 0.5\nprompt:\n  system_message: hi\n'));
    assert.equal(missing.message, `${path.join(tmp, 'missing.yaml')}:3: missing required key "llm.primary_model"`);
  });

  test('a budget needs a price for every model that can be called', () => {
    const text = SHIPPED.replace('  fallback_model: gpt-4.1 ', '  fallback_model: gpt-4o ');
    const err = configError(write('budget.yaml', text));
    assert.deepEqual(err.issues.map((i) => [i.key, i.line]), [['llm.fallback_model', lineOf(text, 'fallback_model: gpt-4o')]]);
    assert.match(err.message, /llm\.budget_usd is set but llm\.prices has no entry for "gpt-4o"/);
  });

  test('malformed YAML is one line with its line and column', () => {
    const text = SHIPPED.replace('  max_retries: 4 ', '  max_retries: [4 ');
    const err = configError(write('broken.yaml', text));
    assert.match(err.message, /broken\.yaml:\d+:\d+: malformed YAML: /);
    assert.ok(err.issues[0].line >= lineOf(text, 'max_retries: [4'));

    const dup = configError(write('dup.yaml', 'framework: matrix_mixer\nframework: matrix_mixer\n'));
    assert.match(dup.message, /dup\.yaml:2:1: malformed YAML: Map keys must be unique/);

    assert.match(configError(write('empty.yaml', '# nothing yet\n')).message, /empty\.yaml: the config is empty$/);
    assert.match(configError(write('list.yaml', '- a\n')).message, /list\.yaml:1: the config must be a mapping, got array/);
  });

  test('a missing file is a user error', () => {
    assert.throws(() => loadRunConfig(path.join(tmp, 'nope.yaml')), (err: unknown) => err instanceof EvoError && /cannot be read \(ENOENT\)/.test(err.message));
  });
});

describe('precedence: profile, then evaluator.init_args, then the command line', () => {
  test('init_args override the file\'s profile key by key; corpus paths are relative to the file', () => {
    const file = write('minimal.yaml', MINIMAL);
    const cfg = loadRunConfig(file);
    const smoke = profileSettings('smoke');
    assert.equal(cfg.evaluator.profile, 'smoke');
    assert.equal(cfg.evaluator.training.steps, 123);
    assert.equal(cfg.evaluator.training.batchSize, 4);
    assert.equal(cfg.evaluator.training.learningRate, smoke.training.learningRate, 'untouched keys keep the profile value');
    assert.equal(cfg.evaluator.seqLen, smoke.seqLen);
    assert.deepEqual(cfg.evaluator.data.corpus, [path.join(tmp, 'data/a.txt'), '/abs/b.txt']);
    assert.deepEqual(cfg.evaluator.sizes, [
      { name: 'd8-L1-H2', dModel: 8, nLayers: 1, nHeads: 2 },
      { name: 'mid', dModel: 12, nLayers: 2, nHeads: 3 },
    ]);
    assert.equal(cfg.iterations, 4);
    assert.equal(cfg.configPath, file);
    // Defaults fill what the file leaves out.
    assert.equal(cfg.llm.provider, 'auto');
    assert.equal(cfg.llm.fallbackModel, null);
    assert.equal(cfg.llm.apiKeyEnv, 'OPENAI_API_KEY');
    assert.equal(cfg.llm.budgetUsd, null);
    assert.equal(cfg.prompt.maxAttempts, 3);
    assert.match(cfg.prompt.userTemplate, /\{parent_block\}/);
  });

  test('the command line wins: --iterations, and a different --profile replaces the evaluator settings as a whole', () => {
    const file = write('minimal.yaml', MINIMAL);
    assert.equal(loadRunConfig(file, { iterations: 9 }).iterations, 9);

    const same = loadRunConfig(file, { profile: 'smoke' });
    assert.equal(same.evaluator.training.steps, 123, 'the same profile keeps init_args');
    assert.deepEqual(same.notices, []);

    const micro = loadRunConfig(file, { profile: 'micro' });
    assert.deepEqual(micro.evaluator, { ...profileSettings('micro'), engine: { engine: 'auto', precision: 'fp32', compile: false } });
    assert.equal(micro.iterations, 2, "the profile's own run length");
    assert.equal(micro.notices.length, 1);
    assert.match(micro.notices[0], /^profile micro \(command line\) replaces the config's profile smoke; evaluator\.init_args \(training_steps, batch_size, corpus, model_sizes\) not applied; max_iterations 4 not applied$/);

    assert.equal(loadRunConfig(file, { profile: 'micro', iterations: 1 }).iterations, 1);
    assert.throws(() => loadRunConfig(file, { profile: 'huge' }), /unknown profile "huge"/);
  });

  test('init_args.copy_segments: false trains on the corpus alone; an object sets the segments', () => {
    assert.ok(profileSettings('smoke').data.copySegments, 'smoke mixes copying segments in by default');
    const off = loadRunConfig(write('plain.yaml', MINIMAL.replace('    batch_size: 4', '    batch_size: 4\n    copy_segments: false')));
    assert.equal(off.evaluator.data.copySegments, undefined);
    const copy = { fraction: 0.1, period: 3, length: 12, symbols: 8 };
    const set = loadRunConfig(write('copy.yaml', MINIMAL.replace('    batch_size: 4', `    batch_size: 4\n    copy_segments: ${JSON.stringify(copy)}`)));
    assert.deepEqual(set.evaluator.data.copySegments, copy);
    const err = configError(write('bad-copy.yaml', MINIMAL.replace('    batch_size: 4', '    batch_size: 4\n    copy_segments: {fraction: 0.1}')));
    assert.match(err.message, /evaluator\.init_args\.copy_segments/);
  });

  test('checks that need the merged settings still name the keys', () => {
    const err = configError(write('warmup.yaml', MINIMAL.replace('    batch_size: 4', '    batch_size: 4\n    warmup_steps: 500')));
    assert.match(err.message, /warmup_steps \(500\) must be fewer than training_steps \(123\) in profile smoke/);
  });
});

describe('seeds and the fitness', () => {
  test('evaluator.seeds is a count counting up from init_args.seed, or a list; fitness settings fill from defaults', () => {
    const counted = loadRunConfig(write('seeds.yaml', MINIMAL.replace('    batch_size: 4', '    batch_size: 4\n    seed: 7').replace('evaluator:\n', 'evaluator:\n  seeds: 3\n')));
    assert.deepEqual(counted.evaluator.seeds, [7, 8, 9]);
    assert.equal(counted.seed, 7, "the run's own seed is the first training seed");
    assert.deepEqual(counted.fitness, { mode: 'loss_delta', level: 0.95, margin: 0, resamples: 2000, earlyStop: 'auto' });

    const listed = loadRunConfig(write('list.yaml', `${MINIMAL.replace('evaluator:\n', 'evaluator:\n  seeds: [3, 11]\n')}fitness:\n  mode: param_multiplier\n  confidence: 0.9\n  margin: 0.01\n  early_stop: false\n`));
    assert.deepEqual(listed.evaluator.seeds, [3, 11]);
    assert.deepEqual(listed.fitness, { mode: 'param_multiplier', level: 0.9, margin: 0.01, resamples: 2000, earlyStop: 0 });
  });

  test('repeated seeds, an unknown mode and an impossible confidence are one line naming the key and its line', () => {
    const repeated = `${MINIMAL.replace('evaluator:\n', 'evaluator:\n  seeds: [1, 1]\n')}`;
    assert.match(configError(write('rep.yaml', repeated)).message, new RegExp(`rep\\.yaml:${lineOf(repeated, 'seeds:')}: "evaluator\\.seeds": seeds repeat: 1, 1`));
    const mode = `${MINIMAL}fitness:\n  mode: vibes\n`;
    assert.match(configError(write('mode.yaml', mode)).message, new RegExp(`mode\\.yaml:${lineOf(mode, 'vibes')}: "fitness\\.mode"`));
    const level = `${MINIMAL}fitness:\n  confidence: 1.5\n`;
    assert.match(configError(write('level.yaml', level)).message, new RegExp(`level\\.yaml:${lineOf(level, 'confidence')}: "fitness\\.confidence"`));
    const early = `${MINIMAL}fitness:\n  early_stop: soon\n`;
    assert.match(configError(write('early.yaml', early)).message, new RegExp(`early\\.yaml:${lineOf(early, 'soon')}: "fitness\\.early_stop": must be auto, false or a seed count`));
  });
});

describe('the engine', () => {
  test('evaluator.engine, precision and compile reach the run settings the workflow starts with; absent, each worker decides (auto, fp32)', () => {
    const torch = loadRunConfig(write('torch.yaml', MINIMAL.replace('evaluator:\n', 'evaluator:\n  engine: torch\n  precision: bf16\n  compile: true\n')));
    assert.deepEqual(runSettingsOf(torch).evaluator.engine, { engine: 'torch', precision: 'bf16', compile: true });
    // A command-line profile replaces the profile's settings, not the run's engine.
    assert.deepEqual(loadRunConfig(write('torch.yaml', MINIMAL.replace('evaluator:\n', 'evaluator:\n  engine: torch\n')), { profile: 'micro' }).evaluator.engine, {
      engine: 'torch',
      precision: 'fp32',
      compile: false,
    });
    assert.deepEqual(loadRunConfig(write('plain.yaml', MINIMAL)).evaluator.engine, { engine: 'auto', precision: 'fp32', compile: false });
    // torch.compile's CUDA-graph mode, handed to the engine as its job's `compile`.
    const graphs = loadRunConfig(write('graphs.yaml', MINIMAL.replace('evaluator:\n', 'evaluator:\n  engine: torch\n  compile: reduce-overhead\n')));
    assert.equal(runSettingsOf(graphs).evaluator.engine?.compile, 'reduce-overhead');
  });

  test('a bad engine, precision or compile value, or torch settings on a tfjs run, is one line naming the key and its line', () => {
    const engine = MINIMAL.replace('evaluator:\n', 'evaluator:\n  engine: jax\n');
    assert.match(configError(write('engine.yaml', engine)).message, new RegExp(`engine\\.yaml:${lineOf(engine, 'jax')}: "evaluator\\.engine" must be one of auto, tfjs, torch, got "jax"`));
    const precision = MINIMAL.replace('evaluator:\n', 'evaluator:\n  precision: fp16\n');
    assert.match(configError(write('precision.yaml', precision)).message, new RegExp(`precision\\.yaml:${lineOf(precision, 'fp16')}: "evaluator\\.precision" must be one of fp32, tf32, bf16, got "fp16"`));
    const compile = MINIMAL.replace('evaluator:\n', 'evaluator:\n  compile: yes please\n');
    assert.match(configError(write('compile.yaml', compile)).message, new RegExp(`compile\\.yaml:${lineOf(compile, 'compile')}: "evaluator\\.compile": must be true, false or reduce-overhead`));
    const tfjs = MINIMAL.replace('evaluator:\n', 'evaluator:\n  engine: tfjs\n  precision: bf16\n');
    assert.match(configError(write('tfjs.yaml', tfjs)).message, new RegExp(`tfjs\\.yaml:${lineOf(tfjs, 'bf16')}: "evaluator\\.precision": bf16 is a torch engine setting, but evaluator\\.engine is tfjs`));
  });

  test("a device worker's EVOSCALE_ENGINE wins over the run's engine; unset or empty, the run's decides, else auto", () => {
    assert.equal(requestedEngine('torch', { EVOSCALE_ENGINE: 'tfjs' }), 'tfjs');
    assert.equal(requestedEngine('tfjs', { EVOSCALE_ENGINE: 'torch' }), 'torch');
    assert.equal(requestedEngine('torch', {}), 'torch');
    assert.equal(requestedEngine('torch', { EVOSCALE_ENGINE: ' ' }), 'torch');
    assert.equal(requestedEngine(undefined, {}), 'auto');
    assert.throws(() => requestedEngine('torch', { EVOSCALE_ENGINE: 'jax' }), /unknown engine "jax" \(expected auto, tfjs, torch\)/);
  });
});
