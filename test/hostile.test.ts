// The hostile corpus: every block in test/fixtures/hostile/ is refused by validateProgram with its own
// check and reason, and none of them gets out: the test process (the worker) stays healthy, a canary file
// next to the sandbox's scratch directory is untouched, a canary listener on 127.0.0.1 is never contacted,
// no sandboxed process is left behind, and no secret of the worker's environment reaches a reason.
// The framework baselines and every catalogue variant pass the same validation.
//
// Fixture format: line 1 `// expect: <check>` (the first failing check), line 2 `// reason: <regex>` (the
// one-line reason it must give), then the block. Blocks that reveal a hole in the sandbox or the checks
// live in test/fixtures/hostile-known-gaps/ (same format, not run; EVOSCALE_RUN_KNOWN_GAPS=1 adds them).
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { staticFindings, validateProgram, type ValidationReport, type ValidationSpec } from '../validate';
import { DYNAMIC_CHECKS } from '../validate/report';
import { baselineProgram, FRAMEWORKS, makeProgram, type Program } from '../core/program';
import { CATALOGUE } from '../propose/offline/catalogue';
import { sandboxIsolation } from '../sandbox/isolation';
import { repoRoot } from '../core/paths';

/**
 * One small spec for everything, with two more training sizes than the largest: a narrower one and one with a
 * single head, where width-dependent-leak.ts and one-head-shape.ts misbehave. timeMultiple 5 sits between the slowest catalogue variant (under 2× its
 * baseline's counted work here) and quartic-time.ts (about 18×); the wall clock is short so that the two
 * never-returning fixtures cost 20 s (before a call's 20 s budget could end), yet long enough for
 * cubic-decay-loop.ts to reach its time check on a loaded machine.
 */
const SPEC: ValidationSpec = {
  dModel: 16,
  nHeads: 2,
  otherSizes: [
    { name: 'd8-L1-H2', dModel: 8, nHeads: 2 },
    { name: 'd16-L1-H1', dModel: 16, nHeads: 1 },
  ],
  seqLen: 16,
  batch: 2,
  timeMultiple: 5,
  wallTimeoutMs: 20_000,
  memoryMb: 1024,
};
const CONCURRENCY = 2;
/** socket-via-global.ts aims its TCP, HTTP and UDP attempts at this port on 127.0.0.1. */
const CANARY_PORT = 39517;
/** Fixtures read, write and delete `../canary-secret.txt` relative to scratch, their working directory. */
const CANARY_NAME = 'canary-secret.txt';
const CANARY_TEXT = 'canary: a candidate must never read, change or delete this file\n';
const CANARY_MTIME = new Date('2001-02-03T04:05:06Z');
const CANARY_SECRETS: Record<string, string> = {
  OPENAI_API_KEY: 'sk-canary-openai-6c1f0b',
  TEMPORAL_API_KEY: 'canary-temporal-93d2a7',
  AWS_SECRET_ACCESS_KEY: 'canary-aws-51e8c4',
};
/** Every check the corpus must exercise; all but the first four run in the sandboxed child. */
const REQUIRED_CHECKS = [
  'syntax', 'static', 'entry-point', 'compile',
  'shape', 'determinism', 'finite', 'causality', 'batch', 'gradient', 'tamper', 'time', 'timeout', 'memory', 'crash',
];
const STATIC_CHECKS = new Set(['syntax', 'static']);

interface Fixture {
  file: string;
  expect: string;
  reason: RegExp;
  block: string;
}

function loadFixtures(dir: string): Fixture[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((file) => {
      const block = fs.readFileSync(path.join(dir, file), 'utf8');
      const [first = '', second = ''] = block.split('\n');
      const expect = /^\/\/ expect: ([\w-]+)\s*$/.exec(first)?.[1];
      const reason = /^\/\/ reason: (.+)$/.exec(second)?.[1];
      if (!expect || !reason) throw new Error(`${file}: line 1 must be "// expect: <check>" and line 2 "// reason: <regex>"`);
      return { file, expect, reason: new RegExp(reason), block };
    });
}

const corpus = loadFixtures(path.join(repoRoot, 'test', 'fixtures', 'hostile'));
const knownGaps = process.env.EVOSCALE_RUN_KNOWN_GAPS === '1' ? loadFixtures(path.join(repoRoot, 'test', 'fixtures', 'hostile-known-gaps')) : [];

let work: string;
let scratch: string;
let canary: string;
let canaryStat: fs.Stats;
let listener: net.Server;
let udp: dgram.Socket | undefined;
let listenerPort = 0;
const contacts: string[] = [];
const savedEnv = new Map<string, string | undefined>();
/** Identities of built-ins a candidate would want to patch: the worker's own must never change. */
const builtins = { random: Math.random, parse: JSON.parse, stringify: JSON.stringify, isFinite: Number.isFinite, map: Array.prototype.map };

function validate(program: Program): Promise<ValidationReport> {
  return validateProgram(program, SPEC, scratch);
}

function failedCheck(report: ValidationReport): string | undefined {
  return report.checks.find((c) => !c.ok)?.name;
}

function listen(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Live processes (not this one) whose command line names our scratch directory: every sandboxed child does. */
function sandboxProcesses(): { ours: string[]; foreign: string[] } {
  const ours: string[] = [];
  const foreign: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue; // exited meanwhile
    }
    const line = `${entry}: ${cmdline.slice(0, 300)}`;
    if (cmdline.includes(scratch)) ours.push(line);
    else if (cmdline.includes('validate-child.js')) foreign.push(line); // another test file's sandbox
  }
  return { ours, foreign };
}

/** The worker is alive and well: responsive, not bloated, its listener up, its built-ins its own. */
async function assertWorkerHealthy(what: string): Promise<void> {
  const t0 = Date.now();
  await new Promise<void>((resolve) => setImmediate(resolve));
  const lag = Date.now() - t0;
  assert.ok(lag < 2000, `${what}: the worker's event loop stalled for ${lag} ms`);
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  assert.ok(rssMb < 1500, `${what}: the worker's resident memory grew to ${Math.round(rssMb)} MB`);
  assert.ok(listener.listening, `${what}: the canary listener is down`);
  assert.deepEqual(
    { random: Math.random, parse: JSON.parse, stringify: JSON.stringify, isFinite: Number.isFinite, map: Array.prototype.map },
    builtins,
    `${what}: the worker's built-ins changed`,
  );
  assert.deepEqual(staticFindings('function attention(tf, ctx, x) {\n  return x;\n}\n'), [], `${what}: the static checker broke`);
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-hostile-test-'));
  scratch = path.join(work, 'scratch');
  fs.mkdirSync(scratch);
  canary = path.join(work, CANARY_NAME);
  fs.writeFileSync(canary, CANARY_TEXT, { mode: 0o600 });
  fs.utimesSync(canary, CANARY_MTIME, CANARY_MTIME);
  canaryStat = fs.statSync(canary);

  listener = net.createServer((socket) => {
    contacts.push(`tcp from ${socket.remoteAddress}:${socket.remotePort}`);
    socket.destroy();
  });
  try {
    listenerPort = await listen(listener, CANARY_PORT);
  } catch {
    listenerPort = await listen(listener, 0); // the port is taken: still a canary, just not the one aimed at
  }
  await new Promise<void>((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (_msg, rinfo) => contacts.push(`udp from ${rinfo.address}:${rinfo.port}`));
    socket.once('error', () => {
      socket.close();
      resolve();
    });
    socket.bind(listenerPort, '127.0.0.1', () => {
      udp = socket;
      resolve();
    });
  });

  for (const [key, value] of Object.entries(CANARY_SECRETS)) {
    savedEnv.set(key, process.env[key]);
    process.env[key] = value;
  }
});

after(() => {
  for (const [key, value] of savedEnv) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  listener?.close();
  udp?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the corpus holds at least 32 fixtures covering every check', (t) => {
  assert.ok(corpus.length >= 32, `only ${corpus.length} fixtures`);
  const expected = new Set(corpus.map((f) => f.expect));
  for (const check of REQUIRED_CHECKS) assert.ok(expected.has(check), `no fixture expects "${check}"`);
  for (const check of expected) assert.ok(REQUIRED_CHECKS.includes(check), `unknown expected check "${check}"`);
  const dynamic = corpus.filter((f) => !STATIC_CHECKS.has(f.expect)).length;
  assert.ok(dynamic >= 8, `only ${dynamic} fixtures reach the sandboxed checks`);
  t.diagnostic(`${corpus.length} fixtures, ${dynamic} of them past the static checks; canary listener on 127.0.0.1:${listenerPort}`);
  if (listenerPort !== CANARY_PORT) t.diagnostic(`port ${CANARY_PORT} was taken: socket-via-global.ts does not aim at the canary listener`);
});

describe('hostile fixtures are refused with their own check and reason', { concurrency: CONCURRENCY }, () => {
  for (const fixture of [...corpus, ...knownGaps]) {
    it(fixture.file, { timeout: SPEC.wallTimeoutMs + 60_000 }, async (t) => {
      const report = await validate(makeProgram('coefficient_dynamics', fixture.block));
      const reason = report.reason ?? '';
      t.diagnostic(report.ok ? 'ACCEPTED' : reason);
      assert.equal(report.ok, false, `${fixture.file} was accepted`);
      assert.equal(failedCheck(report), fixture.expect, `${fixture.file}: ${reason}`);
      assert.ok(reason.length > 0 && reason.length <= 2000 && !/[\r\n]/.test(reason), `${fixture.file}: the reason must be one line: ${JSON.stringify(reason)}`);
      // A check that fails at a training size other than the largest says which: "causality at d8-L1-H2 (…): …".
      const named = fixture.expect === 'syntax' ? ['syntax error'] : [`${fixture.expect}:`, `${fixture.expect} at `];
      assert.ok(named.some((prefix) => reason.startsWith(prefix)), `${fixture.file}: the reason must name its check: ${reason}`);
      assert.match(reason, fixture.reason, `${fixture.file}: unexpected reason`);
      // Refused statically means refused before any candidate code ran.
      if (STATIC_CHECKS.has(fixture.expect)) assert.ok(!report.checks.some((c) => c.name === 'compile'), `${fixture.file}: ran in the sandbox`);
      const text = JSON.stringify(report);
      for (const [key, secret] of Object.entries(CANARY_SECRETS)) assert.ok(!text.includes(secret), `${fixture.file}: ${key} reached the report`);
      await assertWorkerHealthy(fixture.file);
    });
  }
});

test('after the corpus: canary file untouched, listener never contacted, no sandboxed process left', async (t) => {
  assert.equal(fs.readFileSync(canary, 'utf8'), CANARY_TEXT);
  const now = fs.statSync(canary);
  assert.equal(now.mtimeMs, canaryStat.mtimeMs, 'the canary file was modified');
  assert.equal(now.ctimeMs, canaryStat.ctimeMs, "the canary file's inode changed (mode, links or owner)");
  assert.equal(now.ino, canaryStat.ino, 'the canary file was replaced');
  assert.equal(now.nlink, 1, 'the canary file gained a hard link');
  assert.equal(now.mode, canaryStat.mode);
  assert.deepEqual(fs.readdirSync(work).sort(), [CANARY_NAME, 'scratch'], 'files appeared next to the canary');

  assert.deepEqual(contacts, [], 'the canary listener was contacted');

  // A sandbox is settled only after its whole process group is gone; allow a moment for the reaping.
  let left = sandboxProcesses();
  for (let i = 0; i < 20 && left.ours.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = sandboxProcesses();
  }
  assert.deepEqual(left.ours, [], 'sandboxed processes outlived their validation');
  if (left.foreign.length > 0) t.diagnostic(`validate-child.js processes of another test run (not ours): ${left.foreign.join('; ')}`);

  const iso = await sandboxIsolation();
  if (iso.gaps.length > 0) t.diagnostic(`isolation gaps on this machine: ${iso.gaps.join('; ')}`);
  await assertWorkerHealthy('after the corpus');
});

describe('the framework baselines and every catalogue variant pass', { concurrency: CONCURRENCY }, () => {
  const programs: [string, Program][] = [
    ...FRAMEWORKS.map((framework): [string, Program] => [`baseline ${framework}`, baselineProgram(framework)]),
    ...CATALOGUE.map((variant): [string, Program] => [`${variant.framework} ${variant.id}`, makeProgram(variant.framework, variant.block)]),
  ];
  it('covers all three frameworks and the whole catalogue', () => {
    assert.equal(FRAMEWORKS.length, 3);
    assert.ok(CATALOGUE.length > 0);
    assert.equal(programs.length, FRAMEWORKS.length + CATALOGUE.length);
  });
  for (const [name, program] of programs) {
    it(name, { timeout: SPEC.wallTimeoutMs + 60_000 }, async () => {
      const report = await validate(program);
      assert.equal(report.ok, true, `${name}: ${report.reason}`);
      assert.equal(report.reason, undefined);
      assert.deepEqual(report.checks.map((c) => c.name), ['syntax', 'static', ...DYNAMIC_CHECKS]);
      assert.ok((report.blockParams ?? 0) > 0, `${name}: no parameters reported`);
    });
  }
});
