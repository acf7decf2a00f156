// The sandbox holds against a hostile child: no reads or writes outside its paths, no processes, no
// network, no secrets, bounded time and memory, and a parent that stays healthy whatever the child sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { sandboxIsolation } from '../sandbox/isolation';
import { SandboxFailure, type SandboxOptions } from '../sandbox/options';
import { MAX_MESSAGE_BYTES, runInSandbox } from '../sandbox/run';
import { ProgramRejected } from '../core/errors';
import { repoRoot } from '../core/paths';

let work: string;
let probe: string;
let canary: string;

// The probe child: one hostile or ordinary behaviour per `op`. Plain JavaScript written at test time, so
// the tests need no compiled fixture; it reaches the library by absolute paths into dist/ and node_modules/.
const PROBE = (root: string): string => `
const fs = require('node:fs');
const { serveSandboxedTask } = require(${JSON.stringify(path.join(root, 'dist', 'sandbox', 'child.js'))});
const { ProgramRejected } = require(${JSON.stringify(path.join(root, 'dist', 'core', 'errors.js'))});
const tfPath = ${JSON.stringify(path.join(root, 'node_modules', '@tensorflow', 'tfjs'))};
const wasmPath = ${JSON.stringify(path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm'))};
const code = (fn) => { try { fn(); return 'allowed'; } catch (e) { return e.code || e.message; } };
const forever = () => new Promise(() => setInterval(() => {}, 1000));
serveSandboxedTask(async (input, ctx) => {
  switch (input.op) {
    case 'echo': return { input, cwd: process.cwd() };
    case 'env': return process.env;
    case 'read': return code(() => fs.readFileSync(input.path));
    case 'write': return code(() => fs.writeFileSync(input.path, 'written by the sandbox'));
    case 'spawn': return {
      spawn: code(() => require('node:child_process').spawnSync('/bin/sh', ['-c', 'true'])),
      worker: code(() => new (require('node:worker_threads').Worker)('0', { eval: true })),
      binding: code(() => process.binding('fs')),
    };
    case 'connect': return new Promise((resolve) => {
      const s = require('node:net').connect(input.port, '127.0.0.1');
      s.setTimeout(3000, () => { s.destroy(); resolve('timeout'); });
      s.on('connect', () => { s.destroy(); resolve('connected'); });
      s.on('error', (e) => resolve(e.code));
    });
    case 'signal-parent': return code(() => process.kill(input.pid, 'SIGTERM'));
    case 'loop': for (;;) {}
    case 'alloc-native': { const keep = []; for (;;) keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); }
    case 'alloc-heap': { const keep = []; for (let i = 0; ; i++) keep.push(new Array(1e5).fill(i)); }
    case 'exit': process.exit(3);
    case 'reject': throw new ProgramRejected('causality: output at position 3 changed by 0.41', 'causality');
    case 'throw': throw new Error('boom\\nsecond line');
    case 'progress': for (let i = 0; i < 3; i++) ctx.progress({ step: i }); return 'done';
    case 'garbage': fs.writeSync(3, 'this is not json\\n'); return forever();
    case 'huge': { const chunk = Buffer.alloc(1024 * 1024, 97); for (let i = 0; i < input.mb; i++) fs.writeSync(3, chunk); return forever(); }
    case 'partial': fs.writeSync(3, '{"t":"result","v":'); process.exit(0);
    case 'flood': { const chunk = 'x'.repeat(1024 * 1024); for (let i = 0; i < 20; i++) { process.stdout.write(chunk); process.stderr.write(chunk); } return 'flooded'; }
    case 'sleep': return forever();
    case 'wasm': {
      const tf = require(tfPath); require(wasmPath);
      await tf.setBackend('wasm'); await tf.ready();
      return { backend: tf.getBackend(), sum: tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).sum().dataSync()[0] };
    }
  }
  throw new Error('unknown op ' + input.op);
});
`;

function opts(input: object, extra: Partial<SandboxOptions> = {}): SandboxOptions {
  return { script: probe, input, scratchDir: path.join(work, 'scratch'), wallTimeoutMs: 20_000, memoryMb: 512, ...extra };
}

async function failure(p: Promise<unknown>): Promise<SandboxFailure> {
  const err = await p.then(
    () => assert.fail('expected the sandboxed task to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SandboxFailure, `expected a SandboxFailure, got ${String(err)}`);
  return err;
}

/** Pids of live processes whose command line mentions the probe script. */
function probeProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(probe)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-sandbox-test-'));
  probe = path.join(work, 'probe.js');
  fs.writeFileSync(probe, PROBE(repoRoot));
  canary = path.join(work, 'canary-secret.txt');
  fs.writeFileSync(canary, 'canary: must never be read by a candidate');
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

test('a task gets its input and returns its result, with scratch as its cwd', async () => {
  const out = await runInSandbox<{ input: { op: string; n: number }; cwd: string }>(opts({ op: 'echo', n: 7 }));
  assert.deepEqual(out.input, { op: 'echo', n: 7 });
  assert.equal(out.cwd, path.join(work, 'scratch'));
});

test('the tfjs wasm backend loads and runs inside the sandbox', async () => {
  const out = await runInSandbox<{ backend: string; sum: number }>(opts({ op: 'wasm' }));
  assert.deepEqual(out, { backend: 'wasm', sum: 512 });
});

test('the environment is scrubbed down to the allow-listed variables', async () => {
  process.env.OPENAI_API_KEY = 'sk-canary-openai';
  process.env.TEMPORAL_API_KEY = 'canary-temporal';
  try {
    const env = await runInSandbox<Record<string, string>>(opts({ op: 'env' }, { env: { EVOSCALE_BACKEND: 'wasm' } }));
    // The namespace's shell init exports PWD (the scratch dir); nothing else may appear.
    const { PWD, ...rest } = env;
    assert.deepEqual(rest, { EVOSCALE_BACKEND: 'wasm' });
    if (PWD !== undefined) assert.equal(PWD, path.join(work, 'scratch'));
  } finally {
    delete process.env.OPENAI_API_KEY;
    delete process.env.TEMPORAL_API_KEY;
  }
});

test('reads are limited to the repo, the script and the granted paths', async () => {
  assert.equal(await runInSandbox(opts({ op: 'read', path: canary })), 'ERR_ACCESS_DENIED');
  assert.equal(await runInSandbox(opts({ op: 'read', path: '/etc/hostname' })), 'ERR_ACCESS_DENIED');
  assert.equal(await runInSandbox(opts({ op: 'read', path: path.join(repoRoot, 'package.json') })), 'ERR_ACCESS_DENIED');
  assert.equal(await runInSandbox(opts({ op: 'read', path: canary }, { readPaths: [canary] })), 'allowed');
});

test('writes are limited to scratch and the granted write paths', async () => {
  const outside = path.join(work, 'outside.txt');
  assert.equal(await runInSandbox(opts({ op: 'write', path: outside })), 'ERR_ACCESS_DENIED');
  assert.equal(fs.existsSync(outside), false);
  assert.equal(await runInSandbox(opts({ op: 'write', path: path.join(work, 'scratch', 'ok.txt') })), 'allowed');
  const ckpt = path.join(work, 'checkpoints');
  assert.equal(await runInSandbox(opts({ op: 'write', path: path.join(ckpt, 'c.bin') }, { writePaths: [ckpt] })), 'allowed');
});

test('the child can start no processes, workers or internal bindings', async () => {
  const out = await runInSandbox<Record<string, string>>(opts({ op: 'spawn' }));
  assert.deepEqual(out, { spawn: 'ERR_ACCESS_DENIED', worker: 'ERR_ACCESS_DENIED', binding: 'ERR_ACCESS_DENIED' });
});

test('the child cannot reach a TCP listener on 127.0.0.1', async (t) => {
  const iso = await sandboxIsolation();
  if (!iso.network) return t.skip(`no network namespace on this machine: ${iso.gaps.join('; ')}`);
  let contacted = 0;
  const server = net.createServer((s) => {
    contacted++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const result = await runInSandbox<string>(opts({ op: 'connect', port }));
    assert.notEqual(result, 'connected');
    assert.equal(contacted, 0);
  } finally {
    server.close();
  }
});

test('the child cannot signal processes outside its sandbox', async (t) => {
  const iso = await sandboxIsolation();
  if (!iso.pidNamespace) return t.skip(`no PID namespace on this machine: ${iso.gaps.join('; ')}`);
  assert.equal(await runInSandbox(opts({ op: 'signal-parent', pid: process.pid })), 'ESRCH');
});

test('an infinite loop is killed by the wall clock', async () => {
  const t0 = Date.now();
  const err = await failure(runInSandbox(opts({ op: 'loop' }, { wallTimeoutMs: 1500 })));
  assert.equal(err.kind, 'timeout');
  assert.equal(err.message, 'candidate process exceeded the 1.5 s wall-clock limit');
  assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
});

test('unbounded native allocation is stopped by the memory limit', async () => {
  const err = await failure(runInSandbox(opts({ op: 'alloc-native' }, { memoryMb: 256 })));
  assert.equal(err.kind, 'memory', err.message);
  assert.match(err.message, /256 MB/);
});

test('unbounded heap allocation is stopped by the memory limit', async () => {
  const err = await failure(runInSandbox(opts({ op: 'alloc-heap' }, { memoryMb: 256 })));
  assert.equal(err.kind, 'memory', err.message);
});

test('process.exit in the child gives a clear failure', async () => {
  const err = await failure(runInSandbox(opts({ op: 'exit' })));
  assert.equal(err.kind, 'crashed');
  assert.equal(err.message, 'candidate process exited with code 3 before returning a result');
});

test('a ProgramRejected in the child comes back as a ProgramRejected with its check', async () => {
  const err = await runInSandbox(opts({ op: 'reject' })).catch((e: unknown) => e);
  assert.ok(err instanceof ProgramRejected);
  assert.equal(err.check, 'causality');
  assert.equal(err.message, 'causality: output at position 3 changed by 0.41');
});

test('any other error comes back as a one-line task error', async () => {
  const err = await failure(runInSandbox(opts({ op: 'throw' })));
  assert.equal(err.kind, 'task-error');
  assert.equal(err.message, 'boom');
});

test('progress messages reach onMessage before the result', async () => {
  const seen: unknown[] = [];
  const out = await runInSandbox(opts({ op: 'progress' }, { onMessage: (m) => seen.push(m) }));
  assert.equal(out, 'done');
  assert.deepEqual(seen, [{ step: 0 }, { step: 1 }, { step: 2 }]);
});

test('garbage, oversized and truncated messages fail the task without hurting the parent', async () => {
  // A line that does not carry the task's nonce was not written by the reporting code: refused.
  const garbage = await runInSandbox(opts({ op: 'garbage' })).then(
    () => assert.fail('expected the sandboxed task to fail'),
    (e: unknown) => e,
  );
  assert.ok(garbage instanceof ProgramRejected, `expected a ProgramRejected, got ${String(garbage)}`);
  assert.equal(garbage.check, 'tamper');
  assert.match(garbage.message, /report channel/);

  const rssBefore = process.memoryUsage().rss;
  const huge = await failure(runInSandbox(opts({ op: 'huge', mb: MAX_MESSAGE_BYTES / 1024 / 1024 + 4 })));
  assert.equal(huge.kind, 'crashed');
  assert.match(huge.message, /message over 16 MiB/);
  assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024, 'the parent buffered far more than one message');

  const partial = await failure(runInSandbox(opts({ op: 'partial' })));
  assert.equal(partial.message, 'candidate process exited with code 0 before returning a result');

  assert.equal(await runInSandbox(opts({ op: 'flood' })), 'flooded');
});

test('cancelling kills the child', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  const err = await failure(runInSandbox(opts({ op: 'sleep' }, { signal: ac.signal })));
  assert.equal(err.kind, 'killed');
  assert.match(err.message, /cancelled/);
});

test('no sandboxed process outlives its task, and the parent still works', async () => {
  assert.deepEqual(probeProcesses(), []);
  const out = await runInSandbox<{ input: { op: string } }>(opts({ op: 'echo' }));
  assert.equal(out.input.op, 'echo');
  assert.deepEqual(probeProcesses(), []);
});
