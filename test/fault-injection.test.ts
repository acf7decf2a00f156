// The fault-injection harness: a micro LLM-guided run on the real stack (`evo up`'s own start functions:
// an embedded Temporal server, a control worker and two device workers, each a detached process with a
// pid file) during which a seeded PRNG kills, by pid, the control worker, a device worker or the server —
// SIGKILL or SIGTERM, at least 10 times, while it proposes, validates, trains and between iterations —
// and restarts what it killed the way `evo up` does. The run must end exactly as an uninterrupted run of
// the same config: the same programs and losses, every LLM request that finished made once (the reply
// store answers the repeats), the same usage, and no finished training run again.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/activity';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as controlActivities from '../activities/control';
import { CONTROL_QUEUE, type RunSettings, type RunState, type RunSummary, type UsageTotals } from '../contract';
import { composeSummary } from '../archive';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { mulberry32 } from '../core/random';
import { repoRoot } from '../core/paths';
import { CATALOGUE } from '../propose/offline/catalogue';
import { replyStoreDir } from '../propose/llm/replies';
import { readDevServerInfo } from '../ops/temporal/devserver';
import { isProcessAlive } from '../ops/temporal/lock';
import { stackDown, stackUp } from '../ops/stack';
import { FakeOpenAi, completion, errorReply, type RecordedRequest, type ScriptedReply } from './helpers/fake-openai';
import { bundleWorkflows, serverPort } from './helpers/temporal-server';

/** The PRNG's seed: which process, which signal, how long to wait, which events to act on. */
const SEED = 0x5eed_0a10;
/** Kills the harness makes during the run; the run must see at least MIN_KILLS of them. */
const KILLS = 12;
const MIN_KILLS = 10;
/** After the run has made progress, a kill comes within 1–4 s, or at once at a trigger event. */
const DELAY_MS: [number, number] = [1000, 4000];
/** Not a time limit on the test: only how long a run may go without finishing before the harness gives up with diagnostics. */
const GIVE_UP_MS = 20 * 60_000;
const DEVICES = ['cpu', 'cpu'];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-fault-injection-'));
const home = path.join(work, 'home');
const runs = path.join(work, 'runs');
const llm = new FakeOpenAi();
/** Tests begun and passed: the state folder is kept for a look when one failed. */
const tally = { begun: 0, passed: 0 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The log of this process's Temporal runtime (the control worker of the second test), kept off the test's output and shown if it fails. */
const runtimeLog: string[] = [];

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN', (entry) => runtimeLog.push(`${entry.level} ${entry.message}`)) });
  // The stack `evo up` starts, on this test's state folder and free ports; the CLI comes from the shared cache.
  process.env.EVOSCALE_TOOLS_DIR ??= path.join(repoRoot, '.evoscale', 'tools');
  for (const k of Object.keys(process.env)) if (k.startsWith('TEMPORAL_') && k !== 'TEMPORAL_CLI_PATH') delete process.env[k];
  process.env.EVOSCALE_HOME = home;
  process.env.EVOSCALE_RUNS_DIR = runs;
  process.env.EVOSCALE_TEMPORAL_PORT = String(await serverPort());
  process.env.EVOSCALE_TEMPORAL_UI_PORT = String(await serverPort());
  // The CPU engine: deterministic, so an interrupted run must reproduce the uninterrupted one's losses.
  process.env.EVOSCALE_ENGINE = 'tfjs';
  delete process.env.OPENAI_API_KEY;
  process.env.OPENAI_BASE_URL = await llm.start();
  llm.respondWith(reply);
  await up();
});

after(async () => {
  await stackDown(() => undefined).catch((err) => console.error(`stack down: ${String(err)}`));
  await llm.close();
  if (tally.passed === tally.begun && !process.env.EVOSCALE_KEEP_TEST_STATE) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`fault-injection: state, logs and archives kept in ${work}`);
});

/** Pids of the stack as last started, to tell a restart we caused from one the stack needed anyway. */
const pids = new Map<string, number>();
/** Processes that exited without being killed by the harness (a worker that gave up on a restarting server). */
const revived: string[] = [];

/** `evo up`: starts whatever of the stack is not running, leaves the rest alone. */
async function up(killed?: string): Promise<void> {
  let status: Awaited<ReturnType<typeof stackUp>>;
  for (let attempt = 1; ; attempt++) {
    try {
      status = await stackUp({ devices: DEVICES, log: () => undefined });
      break;
    } catch (err) {
      // As an operator would: run `evo up` again a moment later (a server that failed to start, say).
      if (attempt >= 5) throw err;
      await sleep(1000);
    }
  }
  const now = [...status.workers.map((w) => [w.name, w.pid] as const), ['server', readDevServerInfo()?.pid ?? 0] as const];
  for (const [name, pid] of now) {
    const before = pids.get(name);
    if (before !== undefined && before !== pid && name !== killed) revived.push(`${name} (pid ${before})`);
    pids.set(name, pid);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The LLM: answers by what the prompt asks (iteration, attempt), so both runs get the same replies.

const block = (id: string) => CATALOGUE.find((v) => v.id === id)!.block;

function reply(req: RecordedRequest): ScriptedReply {
  const user = req.body.messages.find((m) => m.role === 'user')?.content ?? '';
  const iteration = Number(/^Iteration (\d+) of the/m.exec(user)?.[1]);
  const attempt = 1 + [...user.matchAll(new RegExp(`^- Iteration ${iteration}, attempt \\d+:`, 'gm'))].length;
  const usage = { prompt_tokens: 1000 + iteration, completion_tokens: 200 + attempt };
  if (iteration === 1 && attempt === 1) return completion('Sharper attention would help, but I will not write code today.', usage);
  const id = ['cd-sigmoid', 'cd-relu2', 'cd-softmax-plus-one'][(iteration - 1) % 3];
  return completion(`Whole block: ${id}.\n\n\`\`\`typescript\n${block(id)}\`\`\`\n`, usage);
}

function settingsFor(): RunSettings {
  // Three iterations: kills come as fast as the run makes progress, and the run must outlast ten of them.
  const s = runSettingsOf(loadRunConfig(defaultConfigPath('coefficient_dynamics'), { profile: 'micro', iterations: 3 }));
  // A killed device or control worker is noticed after 5 s of silence.
  s.heartbeatTimeoutS = 5;
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Talking to a server that comes and goes.

/** The server is down or restarting (as opposed to an answer from it). */
function serverTrouble(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (/UNAVAILABLE|ECONNREFUSED|ECONNRESET|Failed to connect|No connection established|DEADLINE_EXCEEDED|no server/i.test(`${e.name} ${e.message}`)) return true;
  }
  return false;
}

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const info = readDevServerInfo();
    let connection: Connection | undefined;
    try {
      if (!info) throw new Error('no server');
      connection = await Connection.connect({ address: info.address, connectTimeout: 5000, channelArgs: { 'grpc.enable_http_proxy': 0 } });
      return await fn(new Client({ connection, namespace: info.namespace }));
    } catch (err) {
      if (!serverTrouble(err) || attempt >= 120) throw err;
      await sleep(500);
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
}

async function startRun(settings: RunSettings, id: string): Promise<void> {
  await withClient((client) => client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }] }));
}

/** The run's result once it has closed; undefined while it runs. Throws with the root cause if it did not complete. */
async function closedResult(id: string): Promise<RunSummary | undefined> {
  const outcome = await withClient(async (client) => {
    const handle: WorkflowHandle = client.workflow.getHandle(id);
    const { status } = await handle.describe();
    if (status.name === 'RUNNING') return undefined;
    try {
      return { summary: composeSummary((await handle.result()) as RunState) };
    } catch (err) {
      if (serverTrouble(err)) throw err;
      const chain: string[] = [];
      for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) chain.push(e.message);
      return { failure: `the run ${id} ended ${status.name}: ${chain.join(' ← ')}` };
    }
  });
  if (outcome && 'failure' in outcome) throw new Error(outcome.failure);
  return outcome?.summary;
}

/** Waits for the run to close, keeping the stack up meanwhile unless told not to (a worker may have exited with the server). */
async function waitForRun(id: string, opts: { onTick?: () => void; supervise?: boolean } = {}): Promise<RunSummary> {
  const deadline = Date.now() + GIVE_UP_MS;
  for (;;) {
    opts.onTick?.();
    if (opts.supervise !== false) await up();
    const result = await closedResult(id);
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`the run ${id} did not finish`);
    await sleep(500);
  }
}

function logTails(): string {
  const dir = path.join(home, 'logs');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  return files
    .map((f) => `--- ${f}\n${fs.readFileSync(path.join(dir, f), 'utf8').split('\n').slice(-25).join('\n')}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// What the run is doing, from the files it leaves: replies stored, validations under way, checkpoints,
// iterations recorded, and every training result with the time it was first written.

type EventKind = 'reply' | 'validation' | 'checkpoint' | 'result' | 'recorded';

const PHASE: Record<EventKind, string> = {
  reply: 'proposing',
  validation: 'validating',
  checkpoint: 'training',
  result: 'training',
  recorded: 'between iterations',
};

class RunWatch {
  readonly seen = new Set<string>();
  readonly events: { kind: EventKind; id: string; at: number }[] = [];
  /** Training result file → modification time when first seen: a result written again would change it. */
  readonly results = new Map<string, number>();
  readonly rewritten: string[] = [];
  private summaryMtime = 0;
  private watcher: fs.FSWatcher | undefined;
  private listeners: (() => void)[] = [];

  constructor(readonly runId: string) {
    // The reply folder is watched, not polled: a reply is stored moments before its step completes.
    fs.mkdirSync(this.replyDir, { recursive: true });
    this.watcher = fs.watch(this.replyDir, () => this.poll());
  }

  get replyDir(): string {
    return path.join(replyStoreDir(), this.runId);
  }

  replies(): string[] {
    return fs.readdirSync(this.replyDir).filter((f) => f.endsWith('.json'));
  }

  /** Resolves at the next event, or after `ms`. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.listeners.push(done);
    });
  }

  close(): void {
    this.watcher?.close();
  }

  private add(kind: EventKind, id: string): void {
    const key = `${kind}:${id}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.events.push({ kind, id, at: Date.now() });
    for (const l of [...this.listeners]) l();
  }

  private list(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  }

  /** What the run is doing, in words: the iteration under way and its last step seen (for the kill log). */
  phase(): string {
    let recorded = 0;
    try {
      recorded = (JSON.parse(fs.readFileSync(path.join(runs, this.runId, 'summary.json'), 'utf8')) as RunSummary).iterations.length;
    } catch {
      /* not written yet */
    }
    const last = this.events[this.events.length - 1]?.kind;
    return `iteration ${recorded}: ${last ? PHASE[last] : 'starting'}`;
  }

  poll(): void {
    for (const f of this.replies()) this.add('reply', f);
    for (const d of this.list(path.join(runs, this.runId, 'scratch'))) if (d.startsWith('validate-')) this.add('validation', d);
    const train = path.join(home, 'cache', 'train');
    for (const k of this.list(train)) {
      const mtime = fs.statSync(path.join(train, k, 'checkpoint.bin'), { throwIfNoEntry: false })?.mtimeMs;
      if (mtime !== undefined) this.add('checkpoint', `${k}@${mtime}`);
    }
    const summary = fs.statSync(path.join(runs, this.runId, 'summary.json'), { throwIfNoEntry: false });
    if (summary && summary.mtimeMs !== this.summaryMtime) {
      this.summaryMtime = summary.mtimeMs;
      this.add('recorded', String(summary.mtimeMs));
    }
    const resultsDir = path.join(home, 'cache', 'results');
    for (const f of this.list(resultsDir).filter((f) => f.endsWith('.json'))) {
      const mtime = fs.statSync(path.join(resultsDir, f), { throwIfNoEntry: false })?.mtimeMs;
      if (mtime === undefined) continue;
      this.add('result', f);
      const first = this.results.get(f);
      if (first === undefined) this.results.set(f, mtime);
      else if (first !== mtime && !this.rewritten.includes(f)) this.rewritten.push(f);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Killing by pid, and restarting what was killed the way `evo up` does.

type Target = 'control' | 'device' | 'server';
type Signal = 'SIGKILL' | 'SIGTERM';

interface Kill {
  n: number;
  target: string;
  pid: number;
  signal: Signal;
  trigger: string;
  phase: string;
  /** Seconds since the run started. */
  at: number;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The pid `evo up` last started for a part of the stack, if it still runs. */
function pidOf(target: string): number | undefined {
  const pid = pids.get(target);
  return pid && isProcessAlive(pid) ? pid : undefined;
}

/** Kills the process and waits until it has gone (a SIGTERMed worker first cancels its activities). */
async function kill(pid: number, signal: Signal): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return; // already gone
  }
  if (!(await waitGone(pid, 45_000))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 10_000);
  }
}

/** A bag of choices drawn in shuffled rounds, so every choice comes up once per round. */
function rounds<T>(rand: () => number, items: T[]): () => T {
  let bag: T[] = [];
  return () => {
    if (bag.length === 0) {
      bag = [...items];
      for (let i = bag.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [bag[i], bag[j]] = [bag[j], bag[i]];
      }
    }
    return bag.pop()!;
  };
}

/**
 * Kills KILLS times while the run goes on, each after the run has made progress since the one before (a
 * reply stored, a validation started, a checkpoint or a training result written, an iteration recorded),
 * so the kills spread over the run instead of piling onto one step. After that progress the kill comes
 * after a random 1–4 s, or at once at a trigger event: a reply stored (the control worker, while its
 * propose step completes), a validation started (the control worker), an iteration recorded (between
 * iterations) or, now and then, a checkpoint (mid-training). The one moment left out: the control worker is
 * not killed while an LLM request is open (sent, its reply not yet stored), since a reply lost on the wire
 * has to be asked for again — storing it is what makes a request finished.
 */
async function injectFaults(t: TestContext, runId: string, watch: RunWatch, started: number): Promise<Kill[]> {
  const rand = mulberry32(SEED);
  const nextTarget = rounds<Target>(rand, ['control', 'device', 'server', 'device']);
  const nextSignal = rounds<Signal>(rand, ['SIGKILL', 'SIGTERM']);
  const kills: Kill[] = [];
  let handled = 0;
  const openExchange = () => llm.requests.length > watch.replies().length;
  const closed = async () => (await closedResult(runId)) !== undefined;

  /** The first fresh trigger among the events not looked at yet (an event seen while restarting is only progress). */
  const scan = (): { target: Target; trigger: string } | undefined => {
    for (; handled < watch.events.length; ) {
      const e = watch.events[handled++];
      if (Date.now() - e.at > 250) continue;
      if (e.kind === 'reply') return { target: 'control', trigger: 'reply stored' };
      if (e.kind === 'validation') return { target: 'control', trigger: 'validation started' };
      if (e.kind === 'recorded') return { target: nextTarget(), trigger: 'iteration recorded' };
      if (e.kind === 'checkpoint' && rand() < 0.3) return { target: nextTarget(), trigger: 'checkpoint written' };
    }
    return undefined;
  };

  while (kills.length < KILLS) {
    await up();
    // Progress since the last kill (events seen while restarting count).
    for (let checked = Date.now(); handled === watch.events.length; ) {
      await watch.next(250);
      watch.poll();
      if (Date.now() - checked > 2000) {
        if (await closed()) return kills;
        checked = Date.now();
      }
    }
    let chosen = scan();
    const delay = DELAY_MS[0] + rand() * (DELAY_MS[1] - DELAY_MS[0]);
    for (const deadline = Date.now() + delay; !chosen && Date.now() < deadline; ) {
      await watch.next(Math.min(100, deadline - Date.now()));
      watch.poll();
      chosen = scan();
    }
    handled = watch.events.length;
    let target = chosen?.target;
    const trigger = chosen?.trigger ?? `${(delay / 1000).toFixed(1)} s after progress`;
    if (!chosen && (await closed())) break;
    target ??= nextTarget();
    // At a reply the point is a worker that dies without a word while its step completes: SIGKILL (a
    // SIGTERMed worker lets the step finish and report).
    const signal = trigger === 'reply stored' ? 'SIGKILL' : nextSignal();
    const name = target === 'device' ? `device-cpu-${Math.floor(rand() * DEVICES.length)}` : target;
    if (name === 'control') for (const until = Date.now() + 10_000; openExchange() && Date.now() < until; ) await sleep(2);
    const pid = pidOf(name);
    if (pid === undefined) continue;
    const phase = watch.phase();
    await kill(pid, signal);
    const k: Kill = { n: kills.length + 1, target: name, pid, signal, trigger, phase, at: Math.round((Date.now() - started) / 100) / 10 };
    kills.push(k);
    t.diagnostic(`kill ${k.n}: ${k.signal} ${k.target} (pid ${k.pid}) at ${k.at} s, ${k.trigger}, ${k.phase}`);
    // Restart what is missing, as `evo up` does (a worker that lost the server may have exited too).
    await up(name);
  }
  return kills;
}

// ---------------------------------------------------------------------------------------------------------

/** What an interruption must not change: per iteration the program, outcome and losses, and the usage. */
function essentials(s: RunSummary) {
  const usage = (u: UsageTotals) => ({ ...u, replies: Object.keys(u.replies ?? {}).length });
  return {
    status: s.status,
    best: s.best,
    usage: usage(s.usage),
    iterations: s.iterations.map((it) => ({
      iteration: it.iteration,
      status: it.status,
      programHash: it.programHash,
      parentHash: it.parentHash,
      description: it.description,
      fitness: it.fitness,
      decision: it.decision,
      failedAttempts: it.failedAttempts,
      proposals: it.proposals,
      usage: usage(it.usage),
      points: it.points.map((p) => ({ size: p.size, valLoss: p.valLoss, valLossBySeed: p.valLossBySeed, steps: p.steps })),
    })),
  };
}

function clearTrainingCache(): void {
  for (const dir of ['results', 'train']) fs.rmSync(path.join(home, 'cache', dir), { recursive: true, force: true });
}

test('random kills of the control worker, device workers and the server during an LLM-guided run: it ends as the uninterrupted run did, no finished LLM request is made again and no finished training runs again', async (t) => {
  tally.begun++;
  const settings = settingsFor();

  // The reference: the same config on the same stack, never interrupted.
  await startRun(settings, 'evo-fi-reference');
  const reference = await waitForRun('evo-fi-reference').catch((err) => assert.fail(`${String(err)}\n${logTails()}`));
  const referenceRequests = llm.requests.length;
  assert.equal(reference.status, 'completed');
  assert.equal(referenceRequests, 4, 'a refused reply and a candidate in iteration 1, a candidate in iterations 2 and 3');
  assert.ok(reference.iterations.every((it) => it.points.length === 3), 'every candidate trained');
  const trainings = reference.iterations.reduce((n, it) => n + it.points.length * settings.evaluator.seeds.length, 0);

  // The same run again, on a cold training cache, with faults.
  clearTrainingCache();
  llm.reset();
  llm.respondWith(reply);
  const id = 'evo-fi-faulty';
  const watch = new RunWatch(id);
  const started = Date.now();
  let kills: Kill[] = [];
  let summary: RunSummary;
  try {
    await startRun(settings, id);
    kills = await injectFaults(t, id, watch, started);
    summary = await waitForRun(id, { onTick: () => watch.poll() });
    watch.poll();
  } catch (err) {
    throw new Error(`${String(err)}\n${logTails()}`);
  } finally {
    watch.close();
  }
  const reused = fs.readFileSync(path.join(home, 'logs', 'control.log'), 'utf8').split('\n').filter((l) => l.includes('taken from the reply store') && l.includes(id)).length;
  t.diagnostic(`${kills.length} kills; ${llm.requests.length} LLM requests (reference ${referenceRequests}); ${reused} replies read from the store; run took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (revived.length) t.diagnostic(`restarted without being killed: ${revived.join(', ')}`);

  assert.ok(kills.length >= MIN_KILLS, `only ${kills.length} kills before the run finished`);
  assert.ok(new Set(kills.map((k) => k.signal)).size === 2, 'both SIGKILL and SIGTERM');
  for (const target of ['control', 'device', 'server']) assert.ok(kills.some((k) => k.target.startsWith(target)), `the ${target} was killed`);

  assert.equal(summary.status, 'completed');
  assert.deepEqual(essentials(summary), essentials(reference), 'the same programs, outcomes, losses and usage as the uninterrupted run');
  assert.equal(llm.requests.length, referenceRequests, 'every LLM request that finished was made once: the repeats came from the reply store');
  assert.equal(watch.replies().length, referenceRequests, 'one stored reply per request');

  assert.equal(watch.results.size, trainings, 'one training result per program, size and seed');
  assert.deepEqual(watch.rewritten, [], 'no finished training ran again: no result was written twice');
  tally.passed++;
});

test('the reply store in a run: a propose step that fails after its reply arrived, a run continued by `evo retry` and an iteration run again after `evo resume` ask the LLM once per exchange and count each call once', async () => {
  tally.begun++;
  // This process's control worker, with the faults injected into its activities: the stack's is stopped.
  const stackControl = pids.get('control');
  if (stackControl) await kill(stackControl, 'SIGTERM');
  const faults = { afterReply: new Set<string>(), diskFull: new Set<string>(), auth: new Set<string>() };
  const activities = {
    ...controlActivities,
    proposeCandidate: async (input: Parameters<typeof controlActivities.proposeCandidate>[0]) => {
      const candidate = await controlActivities.proposeCandidate(input);
      // The worker "dies" after the reply is in: the step fails and Temporal retries it.
      if (input.iteration === 1 && faults.afterReply.delete(input.runId)) throw new Error('the control worker died after the LLM replied');
      return candidate;
    },
    scoreCandidate: async (input: Parameters<typeof controlActivities.scoreCandidate>[0]) => {
      if (input.record.iteration === 1 && faults.diskFull.has(input.runId)) throw ApplicationFailure.nonRetryable('ENOSPC: no space left on device, write', 'ENOSPC');
      return controlActivities.scoreCandidate(input);
    },
  };
  llm.reset();
  llm.respondWith((req) => {
    const user = req.body.messages.find((m) => m.role === 'user')?.content ?? '';
    // The second attempt of iteration 1 of the resume run meets a refused key once.
    if (/^- Iteration 1, attempt 1:/m.test(user) && [...faults.auth].some((id) => faults.auth.delete(id))) return errorReply(401, 'Incorrect API key provided');
    return reply(req);
  });
  const settings = runSettingsOf(loadRunConfig(defaultConfigPath('coefficient_dynamics'), { profile: 'micro', iterations: 1 }));
  settings.heartbeatTimeoutS = 5;

  // The provider reports a reply taken from the store on the worker's log (console.warn here).
  const warn = console.warn;
  const reused: string[] = [];
  console.warn = (...args: unknown[]) => void (String(args[0]).includes('taken from the reply store') ? reused.push(String(args[0])) : warn(...args));
  const info = readDevServerInfo()!;
  const connection = await NativeConnection.connect({ address: info.address });
  const worker = await Worker.create({ connection, namespace: info.namespace, taskQueue: CONTROL_QUEUE, workflowBundle: await bundleWorkflows(), activities, maxConcurrentActivityTaskExecutions: 2 });
  try {
    await worker.runUntil(async () => {
      // `evo retry`: iteration 1 proposes twice (a refused reply, then a block), its first propose step fails
      // after the reply is stored, and scoring finds the disk full: the run fails. Retry continues it.
      const retried = 'evo-fi-retry';
      faults.afterReply.add(retried);
      faults.diskFull.add(retried);
      await startRun(settings, retried);
      await assert.rejects(waitForRun(retried, { supervise: false }), /ENOSPC/);
      assert.equal(llm.requests.length, 2, 'the failed propose step was retried without asking again');
      faults.diskFull.delete(retried);
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), 'retry', retried], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      const afterRetry = await waitForRun(retried, { supervise: false });
      assert.equal(afterRetry.status, 'completed');
      assert.equal(afterRetry.iterations[1].proposals, 2);
      assert.equal(llm.requests.length, 2, 'the iteration run again by `evo retry` took both replies from the store');
      assert.deepEqual(
        [afterRetry.usage.calls, afterRetry.usage.failedCalls, afterRetry.usage.promptTokens, afterRetry.usage.completionTokens],
        [2, 0, 2 * 1001, 201 + 202],
        'each call counted once',
      );
      assert.equal(fs.readdirSync(path.join(replyStoreDir(), retried)).length, 2);

      // `evo resume`: iteration 1's second attempt meets a refused key, the run pauses; resumed, the
      // iteration runs again from its first attempt, whose reply (paid, and counted when the iteration
      // failed) comes from the store and is counted once.
      const before = llm.requests.length;
      const resumed = 'evo-fi-resume';
      faults.auth.add(resumed);
      await startRun(settings, resumed);
      await withClient(async (client) => {
        const handle = client.workflow.getHandle(resumed);
        for (let s = await handle.query<RunState>('status'); s.status !== 'paused'; s = await handle.query<RunState>('status')) await sleep(200);
        await handle.signal('resume');
      });
      const afterResume = await waitForRun(resumed, { supervise: false });
      assert.equal(afterResume.status, 'completed');
      assert.equal(llm.requests.length - before, 3, 'the refused reply, the refused key and the block: nothing asked twice');
      assert.deepEqual(
        [afterResume.usage.calls, afterResume.usage.failedCalls, afterResume.usage.promptTokens, afterResume.usage.completionTokens],
        [3, 1, 2 * 1001, 201 + 202],
        'the reply reused after the resume is counted once in the run',
      );
      assert.equal(afterResume.iterations[1].usage.calls, 2, "the rerun iteration's own usage holds both of its replies");
      const count = (id: string) => reused.filter((l) => l.includes(`for ${id} `)).length;
      assert.deepEqual([count(retried), count(resumed)], [3, 1], 'replies read from the store: the retried step, then both attempts after `evo retry`; the first attempt after `evo resume`');
    });
    tally.passed++;
  } catch (err) {
    throw new Error(`${String(err)}\n${runtimeLog.slice(-20).join('\n')}`);
  } finally {
    console.warn = warn;
    await connection.close();
  }
});
