// The `evo` command line: help generated from each command's spec, and one-line usage errors.
// Needs only the compiled CLI (no Temporal server, no training).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../core/paths';
import { COMMANDS } from '../cli/evo';
import type { CommandSpec } from '../cli/spec';

/** Every command and its options, as users know them: the specs may not rename or drop any. */
const EXPECTED: Record<string, string[]> = {
  evaluate: ['framework', 'program', 'profile', 'json', 'corpus', 'vocab-size', 'seeds', 'fitness'],
  validate: ['framework', 'program', 'profile', 'json'],
  up: ['devices'],
  down: [],
  start: ['framework', 'config', 'profile', 'iterations', 'seed', 'wait'],
  status: [],
  report: ['out', 'watch'],
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
