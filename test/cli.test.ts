// The `evo` command line: help generated from each command's spec, one-line usage errors, and the
// progress bars drawn on a terminal. Needs only the compiled CLI (no Temporal server, no training).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../core/paths';
import { COMMANDS } from '../cli/evo';
import { runCommand, type CommandSpec, type OptionValues } from '../cli/spec';
import { LiveBlock, TrainingBoard, trainingBars, type TrainingBar } from '../core/output';

/** Every command and its options, as users know them: the specs may not rename or drop any. */
const EXPECTED: Record<string, string[]> = {
  evaluate: ['framework', 'program', 'profile', 'json', 'corpus', 'vocab-size', 'seeds', 'fitness', 'engine'],
  validate: ['framework', 'program', 'profile', 'json'],
  up: ['devices', 'slots'],
  down: [],
  start: ['framework', 'config', 'profile', 'iterations', 'seed', 'wait'],
  status: [],
  report: ['out', 'watch', 'png'],
  pause: [],
  resume: [],
  stop: [],
  retry: [],
  gc: [],
};

function evo(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\`]/g, '\\$&');

function assertListsEveryOption(spec: CommandSpec, text: string): void {
  for (const o of spec.options) {
    const line = text.split('\n').find((l) => l.trimStart().startsWith(`--${o.name}`));
    assert.ok(line, `${spec.name}: --${o.name} listed in\n${text}`);
    assert.ok(line.includes(o.description), `${spec.name}: --${o.name} has its description`);
    if (o.default !== undefined) assert.ok(line.includes(`default: ${o.default}`), `${spec.name}: --${o.name} shows its default`);
  }
  for (const p of spec.positionals ?? []) assert.match(text, new RegExp(`^  ${p.name}\\s+${literal(p.description)}`, 'm'));
}

test('the specs declare every command and its options, names unchanged', () => {
  assert.deepEqual(
    Object.fromEntries(COMMANDS.map((c) => [c.name, c.options.map((o) => o.name)])),
    EXPECTED,
  );
});

test('evo --help, evo help and bare evo list every command with its summary', () => {
  const outputs = [evo('--help'), evo('-h'), evo('help'), evo()];
  for (const r of outputs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, outputs[0].stdout);
  }
  for (const c of COMMANDS) assert.match(outputs[0].stdout, new RegExp(`^  ${c.name}\\s+${literal(c.summary)}$`, 'm'), c.name);
});

for (const spec of COMMANDS) {
  test(`evo help ${spec.name}, evo ${spec.name} --help and -h list every option with its description and default`, () => {
    const [viaHelp, viaFlag, viaShort] = [evo('help', spec.name), evo(spec.name, '--help'), evo(spec.name, '-h')];
    for (const r of [viaHelp, viaFlag, viaShort]) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
    }
    assert.equal(viaFlag.stdout, viaHelp.stdout);
    assert.equal(viaShort.stdout, viaHelp.stdout);
    assert.match(viaHelp.stdout, new RegExp(`^usage: evo ${spec.name}\\b`));
    assert.ok(viaHelp.stdout.includes(spec.summary));
    assertListsEveryOption(spec, viaHelp.stdout);
  });

  test(`evo ${spec.name} with an unknown option is one line naming it, exit code 2`, () => {
    const r = evo(spec.name, '--no-such-option');
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `evo: error: unknown option '--no-such-option' (see \`evo help ${spec.name}\`)\n`);
  });
}

test('an unknown command, a missing argument and a bad number are one-line usage errors', () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate" \(see `evo help`\)/],
    [['help', 'frobnicate'], /unknown command "frobnicate"/],
    [['pause'], /<workflowId> is required \(see `evo help pause`\)/],
    [['stop', 'a', 'b'], /unexpected argument "b" \(see `evo help stop`\)/],
    [['validate', '--framework', 'matrix_mixer'], /--program is required \(see `evo help validate`\)/],
    [['start', '--framework', 'matrix_mixer', '--iterations', '3x'], /--iterations must be a whole number, got "3x"/],
  ];
  for (const [args, message] of cases) {
    const r = evo(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('an option whose value may be left out takes the next argument only when it ends in its suffix', async () => {
  let seen: [OptionValues, string[]] | undefined;
  const spec: CommandSpec = {
    name: 'shoot',
    summary: 'test command',
    options: [{ name: 'png', type: 'string', value: '[file.png]', optionalValueSuffix: '.png', description: 'a picture' }],
    positionals: [{ name: 'workflowId', required: true, description: 'the run' }],
    run: async (o, p) => void (seen = [o, p]),
  };
  const parse = async (...argv: string[]) => (await runCommand(spec, argv), seen!);
  assert.deepEqual(await parse('run-1'), [{ png: undefined }, ['run-1']]);
  assert.deepEqual(await parse('--png', 'run-1'), [{ png: true }, ['run-1']]);
  assert.deepEqual(await parse('run-1', '--png'), [{ png: true }, ['run-1']]);
  assert.deepEqual(await parse('--png', 'shot.png', 'run-1'), [{ png: 'shot.png' }, ['run-1']]);
  assert.deepEqual(await parse('--png=shot', 'run-1'), [{ png: 'shot' }, ['run-1']]);
  await assert.rejects(parse('--png', 'run-1', 'extra'), /unexpected argument "extra" \(see `evo help shoot`\)/);
});

const bar = (label: string, step: number, trainLoss?: number, valLoss?: number, etaS: number | null = null): TrainingBar => ({ label, step, steps: 40, trainLoss, valLoss, etaS });

test('progress bars show each training: label, share done, step/steps, last losses and ETA, aligned in columns', () => {
  assert.deepEqual(trainingBars([bar('d8-L1-H2 seed 1234', 0), bar('d16-L1-H2 seed 1234', 10, 4.77123, undefined, 30), bar('d24-L1-H2 seed 1235', 40, 4.3, 4.2)]), [
    'd8-L1-H2 seed 1234   [............]   0/40  ETA —       train —',
    'd16-L1-H2 seed 1234  [###.........]  10/40  ETA 30 s    train 4.7712',
    'd24-L1-H2 seed 1235  [############]  40/40  done        train 4.3000  val 4.2000',
  ]);
  // Minutes and hours as `evo status` writes them.
  assert.deepEqual(trainingBars([bar('a', 20, 4, undefined, 600), bar('b', 1, 5, undefined, 7200)]).map((l) => l.slice(l.indexOf('ETA'))), ['ETA 10 min  train 4.0000', 'ETA 2.0 h   train 5.0000']);
});

test('progress bars never wrap or outgrow the terminal: lines are cut to its width, finished trainings fold into one line', () => {
  const lines = trainingBars([bar('program  d16-L1-H2 seed 1234', 20, 4.2756, 4.1547, 12)], 72);
  assert.equal(lines[0], 'program  d16-L1-H2 seed 1234  [######......]  20/40  ETA 12 s    train …');
  assert.equal(lines[0].length, 72);
  const many = [bar('s1', 40, 4), bar('s2', 40, 4), bar('s3', 12, 5, undefined, 3), bar('s4', 40, 4), bar('s5', 2, 5), bar('s6', 1, 5)];
  assert.equal(trainingBars(many, 80, 6).length, 6);
  assert.deepEqual(trainingBars(many, 80, 3), [
    '3 of 6 trainings done, 1 more not shown',
    's3  [####........]  12/40  ETA 3 s     train 5.0000',
    's5  [#...........]   2/40  ETA —       train 5.0000',
  ]);
});

test('a training board keeps the last losses of each training and its ETA at the pace since its first report', () => {
  const board = new TrainingBoard();
  board.update('d8 seed 1', { step: 0, steps: 40, resumedFromStep: 0 }, 1_000);
  board.update('d16 seed 1', { step: 20, steps: 40, resumedFromStep: 20 }, 2_000);
  board.update('d8 seed 1', { step: 10, steps: 40, resumedFromStep: 0, trainLoss: 5.1 }, 11_000);
  board.update('d8 seed 1', { step: 20, steps: 40, resumedFromStep: 0, trainLoss: 4.8, valLoss: 4.9 }, 21_000);
  board.update('d8 seed 1', { step: 21, steps: 40, resumedFromStep: 0, trainLoss: 4.7 }, 22_000);
  assert.deepEqual(board.bars(22_000), [
    // 21 steps in 21 s: 19 left take 19 s; the validation loss stays until the next evaluation.
    { label: 'd8 seed 1', step: 21, steps: 40, trainLoss: 4.7, valLoss: 4.9, etaS: 19 },
    // Resumed at step 20 and no step done since: no pace yet.
    { label: 'd16 seed 1', step: 20, steps: 40, trainLoss: undefined, valLoss: undefined, etaS: null },
  ]);
  // A retried attempt starts again from its checkpoint: its pace is measured afresh.
  board.update('d8 seed 1', { step: 10, steps: 40, resumedFromStep: 10 }, 30_000);
  board.update('d8 seed 1', { step: 15, steps: 40, resumedFromStep: 10, trainLoss: 5 }, 40_000);
  assert.equal(board.bars(40_000)[0].etaS, 50);
});

test('a live block redraws its lines in place on the terminal and prints permanent lines above them', () => {
  let screen = '';
  const block = new LiveBlock({ write: (t: string) => (screen += t), columns: 100, rows: 30 });
  assert.equal(block.columns, 100);
  assert.equal(block.rows, 29);
  block.show(['a 1/2', 'b 0/2']);
  block.show(['a 2/2', 'b 1/2']);
  block.above(() => (screen += 'warning: x\n'));
  block.show(['a 2/2', 'b 2/2']);
  block.end();
  block.show(['next']);
  // CSI n F moves to the start of the block's first line, CSI 0 J clears to the end of the screen.
  assert.equal(screen, 'a 1/2\nb 0/2\n' + '\x1b[2F\x1b[0Ja 2/2\nb 1/2\n' + '\x1b[2F\x1b[0Jwarning: x\na 2/2\nb 1/2\n' + '\x1b[2F\x1b[0Ja 2/2\nb 2/2\n' + 'next\n');
  assert.equal(new LiveBlock({ write: () => undefined }).columns, 80);
});
