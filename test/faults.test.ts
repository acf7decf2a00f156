// Specification of the retry rule and the graceful-stop guarantee: every error maps to retry or final
// by whose fault it is (activities/errors.ts), and a worker stopped with SIGTERM (what `evo down` sends)
// never fails a run — against a real Temporal server and real worker processes, the interrupted run
// ends with exactly the losses of an uninterrupted one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import * as controlActivities from '../activities/control';
import { activityFailure } from '../activities/errors';
import { EvoError, ProgramRejected } from '../core/errors';
import { SandboxFailure } from '../sandbox/options';
import { runInSandbox } from '../sandbox/run';
import { LlmError } from '../propose/llm/openai';
import { CONTROL_QUEUE, type RunSettings, type RunSummary } from '../contract';
import { runSettings } from '../config/run-settings';
import { repoRoot } from '../core/paths';
import { startServerForRuns, type TestServer } from './helpers/temporal-server';
import { controlBlock } from './helpers/controls';
import { summaryOf } from './helpers/workers';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-faults-'));

test('the failure rule: cancellation and infrastructure are retried, the candidate\'s faults are CandidateFailed, user errors fail fast', async () => {
  const failure = (err: unknown, signal?: AbortSignal) => activityFailure(err, signal);
  const retryable = (f: unknown) => f instanceof ApplicationFailure && !f.nonRetryable;

  // Cancellation (a cancelled step or a worker shutting down): whatever the killed work threw, the SDK sees the cancellation.
  const ac = new AbortController();
  ac.abort(new CancelledFailure('WORKER_SHUTDOWN'));
  const cancelled = failure(new SandboxFailure('candidate process was cancelled', 'killed'), ac.signal);
  assert.ok(cancelled instanceof CancelledFailure);
  assert.equal(cancelled.message, 'WORKER_SHUTDOWN');
  assert.ok(failure(new ProgramRejected('diverged', 'finite'), ac.signal) instanceof CancelledFailure);

  // Our abort, for real: the sandbox reports a kill that is the infrastructure's, retried.
  const sleeper = path.join(scratch, 'sleeper.js');
  fs.writeFileSync(sleeper, `require(${JSON.stringify(path.join(repoRoot, 'dist', 'sandbox', 'child.js'))}).serveSandboxedTask(() => new Promise(() => setInterval(() => {}, 1000)));\n`);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 500);
  const killedByUs = await runInSandbox({ script: sleeper, input: null, scratchDir: path.join(scratch, 'unit'), wallTimeoutMs: 60_000, memoryMb: 512, signal: abort.signal }).then(
    () => assert.fail('a cancelled child returned'),
    (err: unknown) => err,
  );
  assert.ok(killedByUs instanceof SandboxFailure && killedByUs.kind === 'killed', String(killedByUs));
  assert.ok(retryable(failure(killedByUs)), `our abort is retried: ${String(killedByUs)}`);

  // A child killed from outside (the kernel's OOM killer) away from its own limit: retried.
  assert.ok(retryable(failure(new SandboxFailure('candidate process was killed (out of memory?)', 'killed', '', 'infrastructure'))));
  assert.ok(retryable(failure(new SandboxFailure('candidate process was killed (out of memory?)', 'killed'))));
  // Out of memory without a limit of the sandbox's: the machine's, retried.
  assert.ok(retryable(failure(new SandboxFailure('candidate process ran out of memory', 'memory', '', 'infrastructure'))));
  // An LLM API that stays down: retried.
  assert.ok(retryable(failure(new LlmError('no LLM answered', 'LLM_UNAVAILABLE', { calls: [], promptTokens: 0, completionTokens: 0, costUsd: 0 }))));

  // The candidate's own faults: final CandidateFailed.
  for (const err of [
    new SandboxFailure('candidate process exceeded the 1024 MB memory limit', 'memory'),
    new SandboxFailure('candidate process was killed (out of memory?)', 'killed', '', 'candidate'),
    new SandboxFailure('candidate process exceeded the 60 s wall-clock limit', 'timeout'),
    new SandboxFailure('candidate process crashed with SIGSEGV', 'crashed'),
    new SandboxFailure('loss is NaN', 'task-error'),
    new ProgramRejected('training diverged', 'finite'),
  ]) {
    const f = failure(err);
    assert.ok(f instanceof ApplicationFailure && f.nonRetryable && f.type === 'CandidateFailed', `${err.message}: ${String(f)}`);
  }

  // User errors fail fast with their code.
  for (const err of [new EvoError('corpus file not found: /nope.txt', 'DATA_MISSING'), new LlmError('401', 'LLM_AUTH', { calls: [], promptTokens: 0, completionTokens: 0, costUsd: 0 })]) {
    const f = failure(err);
    assert.ok(f instanceof ApplicationFailure && f.nonRetryable && f.type === err.code, String(f));
  }

  // Not ours (a network error, a full disk): passed on, and the SDK retries it.
  const plain = new Error('ECONNRESET');
  assert.equal(failure(plain), plain);
});

let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const logs: string[] = [];

before(async () => {
  ({ server, bundle } = await startServerForRuns());
});

after(async () => {
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A fresh state and archive folder per run (so no training comes from another run's cache), and its candidates. */
function useFolders(name: string): { home: string; runs: string; settings: RunSettings } {
  const home = path.join(scratch, name, 'home');
  const runs = path.join(scratch, name, 'runs');
  const candidates = path.join(scratch, name, 'candidates');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(candidates, { recursive: true });
  fs.writeFileSync(path.join(candidates, '01-causal-mean.ts'), controlBlock('causal-mean'));
  process.env.EVOSCALE_HOME = home;
  process.env.EVOSCALE_RUNS_DIR = runs;
  const s = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations: 1, heartbeatTimeoutS: 60 });
  s.evaluator.training = { ...s.evaluator.training, steps: 100, checkpointEvery: 10, evalEvery: 100 };
  // A long heartbeat timeout: a retry after a graceful stop must not wait for it (see lastFailure below).
  return { home, runs, settings: { ...s, mutation: { provider: 'files', dir: candidates, maxAttempts: 1 } } };
}

function spawnWorker(script: 'device' | 'control'): ChildProcess {
  const args = script === 'device' ? ['--device', 'cpu'] : [];
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'workers', `${script}.js`), ...args], {
    env: { ...process.env, ...server.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => logs.push(String(d)));
  child.stderr!.on('data', (d) => logs.push(String(d)));
  return child;
}

/** SIGTERM, as `evo down` sends; resolves with how the process ended (SIGKILL only as a last resort). */
async function sigterm(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.kill('SIGTERM');
  const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    return await exited;
  } finally {
    clearTimeout(force);
  }
}

/** Completed activities of a workflow, with the attempt that completed and the failure of the attempt before it. */
async function completedActivities(client: Client, workflowId: string) {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const bySchedule = new Map<string, { type: string; attempt: number; lastFailure?: { message?: string | null; timeoutFailureInfo?: unknown } | null }>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) bySchedule.set(String(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '', attempt: 0 });
    const started = e.activityTaskStartedEventAttributes;
    if (started) Object.assign(bySchedule.get(String(started.scheduledEventId))!, { attempt: started.attempt ?? 0, lastFailure: started.lastFailure });
  }
  return events.filter((e) => e.activityTaskCompletedEventAttributes).map((e) => bySchedule.get(String(e.activityTaskCompletedEventAttributes!.scheduledEventId))!);
}

/** What must not change when a run is interrupted: per iteration the program and every size's losses. */
function losses(summary: RunSummary) {
  return summary.iterations.map((it) => ({
    iteration: it.iteration,
    status: it.status,
    programHash: it.programHash,
    points: it.points.map((p) => ({ size: p.size, valLoss: p.valLoss, valLossBySeed: p.valLossBySeed, steps: p.steps })),
  }));
}

async function clientFor<T>(body: (client: Client) => Promise<T>): Promise<T> {
  const connection = await server.connect();
  try {
    return await body(new Client({ connection, namespace: server.namespace }));
  } finally {
    await connection.close();
  }
}

function start(client: Client, settings: RunSettings, id: string) {
  return client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }] });
}

let reference: Promise<RunSummary> | undefined;

/** The same run, never interrupted: a control worker in this process and one device worker. */
function uninterrupted(): Promise<RunSummary> {
  reference ??= (async () => {
    const { settings } = useFolders('reference');
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({ connection: nativeConnection, namespace: server.namespace, taskQueue: CONTROL_QUEUE, workflowBundle: bundle, activities: controlActivities, maxConcurrentActivityTaskExecutions: 2 });
    const device = spawnWorker('device');
    try {
      return await worker.runUntil(clientFor(async (client) => summaryOf(await start(client, settings, 'evo-faults-reference'), logs)));
    } finally {
      await sigterm(device);
      await nativeConnection.close();
    }
  })();
  return reference;
}

test('SIGTERM to the device worker while a size trains: the training is retried at once on a new device worker, resumes from its checkpoint, and the run ends with the losses of an uninterrupted run', async () => {
  const ref = await uninterrupted();
  const { home, settings } = useFolders('device-sigterm');
  const id = 'evo-faults-device';
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({ connection: nativeConnection, namespace: server.namespace, taskQueue: CONTROL_QUEUE, workflowBundle: bundle, activities: controlActivities, maxConcurrentActivityTaskExecutions: 2 });
  let device = spawnWorker('device');
  try {
    const { summary, trainings, stopped } = await worker.runUntil(
      clientFor(async (client) => {
        const handle = await start(client, settings, id);
        const trainDir = path.join(home, 'cache', 'train');
        // Checkpoints exist only while a size trains: they are removed once its result is recorded.
        const midTraining = () => fs.existsSync(trainDir) && fs.readdirSync(trainDir).some((k) => fs.existsSync(path.join(trainDir, k, 'checkpoint.bin')));
        const deadline = Date.now() + 240_000;
        while (!midTraining()) {
          assert.ok(Date.now() < deadline, 'no checkpoint appeared');
          await new Promise((r) => setTimeout(r, 50));
        }
        const stopped = await sigterm(device);
        device = spawnWorker('device');
        const summary = await summaryOf(handle, logs);
        const trainings = (await completedActivities(client, `${id}/iter-000`)).filter((a) => a.type === 'trainSize');
        return { summary, trainings, stopped };
      }),
    );
    assert.deepEqual(stopped, { code: 0, signal: null }, 'the device worker shut down cleanly on SIGTERM');
    assert.equal(summary.status, 'completed');
    const retried = trainings.filter((a) => a.attempt > 1);
    assert.equal(retried.length, 1, `exactly the interrupted training ran again: ${JSON.stringify(trainings)}`);
    assert.equal(retried[0].lastFailure?.timeoutFailureInfo ?? null, null, `retried after the shutdown's failure, not a heartbeat timeout: ${JSON.stringify(retried[0].lastFailure)}`);
    assert.equal(summary.iterations[0].points.filter((p) => p.resumedFromStep > 0).length, 1, 'the interrupted size resumed from its checkpoint');
    assert.deepEqual(losses(summary), losses(ref));
  } finally {
    await sigterm(device);
    await nativeConnection.close();
  }
});

test('SIGTERM to the control worker during a validation: a restarted control worker retries it and the run ends with the losses of an uninterrupted run', async () => {
  const ref = await uninterrupted();
  const { runs, settings } = useFolders('control-sigterm');
  const id = 'evo-faults-control';
  let control = spawnWorker('control');
  const device = spawnWorker('device');
  try {
    const { summary, validations, stopped } = await clientFor(async (client) => {
      const handle = await start(client, settings, id);
      // A validation is under way once its sandbox's scratch folder exists.
      const scratchDir = path.join(runs, id, 'scratch');
      const validating = () => fs.existsSync(scratchDir) && fs.readdirSync(scratchDir).some((d) => d.startsWith('validate-'));
      const deadline = Date.now() + 240_000;
      while (!validating()) {
        assert.ok(Date.now() < deadline, 'no validation started');
        await new Promise((r) => setTimeout(r, 50));
      }
      const stopped = await sigterm(control);
      control = spawnWorker('control');
      const summary = await summaryOf(handle, logs);
      const validations = (await completedActivities(client, `${id}/iter-000`)).filter((a) => a.type === 'validateCandidate');
      return { summary, validations, stopped };
    });
    assert.deepEqual(stopped, { code: 0, signal: null }, 'the control worker shut down cleanly on SIGTERM');
    assert.equal(summary.status, 'completed');
    assert.equal(validations.length, 1);
    assert.equal(validations[0].attempt, 2, 'the interrupted validation ran again');
    assert.equal(validations[0].lastFailure?.timeoutFailureInfo ?? null, null, `retried after the shutdown's failure, not a timeout: ${JSON.stringify(validations[0].lastFailure)}`);
    assert.deepEqual(losses(summary), losses(ref));
  } finally {
    await sigterm(control);
    await sigterm(device);
  }
});
