// Specification of a device worker's slots: with `--slots N` one worker trains up to N sizes at once on
// its one device, with the losses of one at a time; a training that runs out of GPU memory is retried,
// never blamed on the candidate, and its worker runs one training fewer at once until trainings fit. Against a
// real Temporal server and real device worker processes; only the GPU's running out of memory is mocked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { CONTROL_QUEUE, type RunSettings, type RunSummary } from '../contract';
import { runSettings } from '../config/run-settings';
import { repoRoot } from '../core/paths';
import { startServerForRuns, type TestServer } from './helpers/temporal-server';
import { startDeviceWorker, stopProcess, summaryOf, withWorkers, type DeviceWorkerOptions } from './helpers/workers';
import { controlBlock } from './helpers/controls';
import { TrainingSlots, TRAININGS_BEFORE_RAISE } from '../workers/slots';
import { runSnapshot } from '../ops/runs';
import { trainingBarsOf, trainingsText } from '../ops/run-report';

let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-slots-'));

before(async () => {
  ({ server, bundle } = await startServerForRuns());
});

after(async () => {
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A fresh state and archive folder per run (no training comes from another run's cache), with a causal-mean candidate. */
function microRun(name: string, iterations: number): RunSettings {
  const dir = path.join(scratch, name);
  const candidates = path.join(dir, 'candidates');
  fs.mkdirSync(path.join(dir, 'home'), { recursive: true });
  fs.mkdirSync(candidates, { recursive: true });
  fs.writeFileSync(path.join(candidates, '01-causal-mean.ts'), controlBlock('causal-mean'));
  process.env.EVOSCALE_HOME = path.join(dir, 'home');
  process.env.EVOSCALE_RUNS_DIR = path.join(dir, 'runs');
  const s = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations, heartbeatTimeoutS: 60 });
  return { ...s, mutation: { provider: 'files', dir: candidates, maxAttempts: 1 } };
}

/** One attempt of a training activity as the iteration's history records it. */
interface TrainingAttempt {
  attempt: number;
  /** The retry policy's bound (0 would retry forever). */
  maximumAttempts: number;
  worker: string;
  startedAt: number;
  closedAt: number;
  /** The failure of the attempt before: an application failure's type, else `timeout`, `cancelled` or `other`. */
  lastFailure?: { message: string; type: string };
}

/** The completed training activities of a workflow, each with the attempt that completed it. */
async function trainings(client: Client, workflowId: string): Promise<TrainingAttempt[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const time = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, { type: string; maximumAttempts: number }>();
  const started = new Map<string, Omit<TrainingAttempt, 'closedAt'>>();
  const out: TrainingAttempt[] = [];
  for (const e of events) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a) scheduled.set(String(e.eventId), { type: a.activityType?.name ?? '', maximumAttempts: a.retryPolicy?.maximumAttempts ?? 0 });
    const s = e.activityTaskStartedEventAttributes;
    const activity = s && scheduled.get(String(s.scheduledEventId));
    if (s && activity?.type === 'trainSize') {
      const f = s.lastFailure;
      const failure = f ? { message: f.message ?? '', type: f.applicationFailureInfo?.type ?? (f.timeoutFailureInfo ? 'timeout' : f.canceledFailureInfo ? 'cancelled' : 'other') } : undefined;
      started.set(String(s.scheduledEventId), { attempt: s.attempt ?? 0, maximumAttempts: activity.maximumAttempts, worker: s.identity ?? '', startedAt: time(e), lastFailure: failure });
    }
    const c = e.activityTaskCompletedEventAttributes;
    if (c && started.has(String(c.scheduledEventId))) out.push({ ...started.get(String(c.scheduledEventId))!, closedAt: time(e) });
  }
  return out;
}

/**
 * One evolution run with a control worker in this process and a device worker started with `device`;
 * `meanwhile` may replace that worker while the run goes on.
 */
async function run(settings: RunSettings, id: string, device: DeviceWorkerOptions, meanwhile?: (worker: { current: ChildProcess }, logs: string[]) => Promise<void>) {
  const logs: string[] = [];
  return withWorkers(
    server,
    bundle,
    logs,
    async (client, worker) => {
      const handle = await client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }] });
      await meanwhile?.(worker, logs);
      const summary = await summaryOf(handle, logs);
      const iterations = await Promise.all(summary.iterations.map((it) => trainings(client, `${id}/iter-${String(it.iteration).padStart(3, '0')}`)));
      return { summary, iterations, log: () => logs.join('') };
    },
    device,
  );
}

/** What must not depend on the slots: per iteration the program and every size's losses. */
function losses(summary: RunSummary) {
  return summary.iterations.map((it) => ({ iteration: it.iteration, status: it.status, programHash: it.programHash, points: it.points.map((p) => ({ size: p.size, valLoss: p.valLoss, valLossBySeed: p.valLossBySeed, steps: p.steps })) }));
}

/** The worker's line for each training it starts: "training <size> seed <seed> (<busy> of <N> slot(s) busy)". */
function admissions(log: string): { busy: number; slots: number }[] {
  return [...log.matchAll(/training \S+ seed \d+ \((\d+) of (\d+) slots? busy\)/g)].map((m) => ({ busy: Number(m[1]), slots: Number(m[2]) }));
}

test('a device worker with --slots 2 trains two sizes of an iteration at once; stopped by SIGTERM mid-training, its successor takes them over; the losses are a one-slot worker\'s', async () => {
  const one = await run(microRun('one-slot', 0), 'evo-slots-one', {});
  const twoSlots = { args: ['--slots', '2'] };
  const two = await run(microRun('two-slots', 0), 'evo-slots-two', twoSlots, async (worker, logs) => {
    // SIGTERM (what `evo down` sends) once a size has checkpointed: every training in flight is cancelled.
    const trainDir = path.join(process.env.EVOSCALE_HOME!, 'cache', 'train');
    const midTraining = () => fs.existsSync(trainDir) && fs.readdirSync(trainDir).some((k) => fs.existsSync(path.join(trainDir, k, 'checkpoint.bin')));
    const deadline = Date.now() + 240_000;
    while (!midTraining()) {
      assert.ok(Date.now() < deadline, 'no checkpoint appeared');
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopProcess(worker.current);
    worker.current = startDeviceWorker(server, logs, twoSlots);
  });
  assert.equal(two.summary.status, 'completed');

  // The worker's own account: a training admitted while another held the other slot; never more than one with one slot.
  assert.ok(admissions(two.log()).some((a) => a.busy === 2 && a.slots === 2), `no training ran beside another:\n${two.log()}`);
  assert.ok(admissions(one.log()).every((a) => a.busy === 1 && a.slots === 1), `a one-slot worker ran two at once:\n${one.log()}`);

  // The server's account: on one worker, some training started before another had completed.
  const runs = two.iterations[0];
  assert.equal(runs.length, 3);
  const overlapping = runs.some((a) => runs.some((b) => a !== b && a.worker === b.worker && a.startedAt < b.startedAt && b.startedAt < a.closedAt));
  assert.ok(overlapping, `the history shows no two trainings at once on one worker: ${JSON.stringify(runs)}`);

  // The trainings SIGTERM cancelled were retried at once (not after a heartbeat timeout), one from its checkpoint.
  const retried = runs.filter((r) => r.attempt > 1);
  assert.ok(retried.length >= 1 && retried.every((r) => r.lastFailure?.type === 'WorkerShutdown'), JSON.stringify(runs));
  assert.ok(two.summary.iterations[0].points.some((p) => p.resumedFromStep > 0), 'no size resumed from its checkpoint');

  assert.deepEqual(losses(two.summary), losses(one.summary));
});

/**
 * EVOSCALE_PYTHON for the out-of-memory test: the real interpreter, except that the candidates' trainings
 * numbered in `which` (counting from 1, in the order they start) end as the engine ends one that ran out
 * of GPU memory (its line on stderr, status 4). The candidates (a causal mean, a self-only block) are the
 * programs whose graphs have no Exp kernel; the baseline's softmax has one. The first retry of a training
 * that ran out of memory waits (up to two minutes) for a file named `release` in `dir`, so the test can
 * see it in flight as `evo status` does.
 */
function pythonOutOfMemory(dir: string, which: number[]): string {
  const script = path.join(dir, 'python-out-of-memory');
  fs.mkdirSync(path.join(dir, 'attempts'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'out-of-memory'), { recursive: true });
  fs.writeFileSync(
    script,
    `#!/bin/sh
if [ "$1" = -m ] && [ "$2" = evoscale_engine ] && ! grep -q '"kernel":"Exp"' "$(sed -n 's/.*"graph":"\\([^"]*\\)".*/\\1/p' "$4")"; then
  job=$(dirname "$4" | tr / _)
  if [ -e "${dir}/out-of-memory/$job" ] && mkdir "${dir}/held" 2>/dev/null; then
    i=0
    while [ ! -e "${dir}/release" ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
  fi
  n=1
  while ! mkdir "${dir}/attempts/$n" 2>/dev/null; do n=$((n + 1)); done
  if case " ${which.join(' ')} " in *" $n "*) true ;; *) false ;; esac; then
    touch "${dir}/out-of-memory/$job"
    echo 'evoscale_engine: out of GPU memory: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.10 GiB total capacity)' >&2
    exit 4
  fi
fi
exec /usr/bin/python3 "$@"
`,
    { mode: 0o755 },
  );
  return script;
}

test('a training out of GPU memory is retried, its worker drops to one slot and rises again once trainings fit, the candidate is not blamed; a second out-of-memory at two slots pins it at one', async () => {
  const settings = microRun('out-of-memory', 2);
  fs.writeFileSync(path.join(settings.mutation.dir!, '02-self-only.ts'), controlBlock('self-only'));
  // The first candidate's first three trainings run out of memory, then its three sizes fit at one slot
  // (TRAININGS_BEFORE_RAISE), so the worker tries two again: the second candidate's first training at two
  // runs out of memory too.
  const wrapper = path.join(scratch, 'out-of-memory');
  const python = pythonOutOfMemory(wrapper, [1, 2, 3, 7]);
  let status = '';
  let bars: string[] = [];
  const { summary, iterations, log } = await run(settings, 'evo-slots-oom', { args: ['--slots', '2'], env: { EVOSCALE_ENGINE: 'torch', EVOSCALE_PYTHON: python } }, async () => {
    // `evo status` while the first retry after an out-of-memory is held in flight: the line names the cause.
    try {
      const deadline = Date.now() + 240_000;
      while (Date.now() < deadline) {
        const snap = await runSnapshot('evo-slots-oom').catch(() => null);
        if (snap?.trainings.some((t) => t.lastOutOfMemory)) {
          status = trainingsText(snap.trainings);
          bars = trainingBarsOf(snap.trainings).map((b) => b.label);
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      fs.writeFileSync(path.join(wrapper, 'release'), '');
    }
  });
  assert.match(status, /^  d\d+-L1-H2 seed \d+  step \d+\/40 .*\(iteration 1, attempt \d after out of GPU memory at d\d+-L1-H2 with \d slots?\)$/m, `evo status showed:\n${status}`);
  // `evo start --wait` labels the same training's bar with the same cause.
  assert.ok(bars.some((label) => /^iteration 1  d\d+-L1-H2 seed \d+ \(attempt \d after out of GPU memory at d\d+-L1-H2 with \d slots?\)$/.test(label)), `the bars' labels: ${bars.join(' | ')}`);
  assert.equal(summary.status, 'completed');
  for (const candidate of summary.iterations.slice(1)) {
    assert.notEqual(candidate.status, 'invalid', `the candidate was blamed: ${candidate.error}`);
    assert.equal(candidate.points.length, 3);
    assert.ok(candidate.points.every((p) => p.backend.startsWith('torch')), `backends: ${candidate.points.map((p) => p.backend)}`);
  }

  // The first to run out of memory was admitted beside another, and its worker dropped to one slot; the
  // third ran alone and is reported so. Every training admitted after the drop ran alone until three
  // had fit, when the worker rose to two; the next out-of-memory at two pinned it at one.
  const text = log();
  assert.match(text, /out of GPU memory at d\d+-L1-H2 with 2 slots: this worker now runs 1 slot\b(?! from now on)/);
  assert.match(text, /out of GPU memory at d\d+-L1-H2 with 1 slot: this worker now runs 1 slot\b/);
  const rise = text.indexOf('3 trainings fit in GPU memory with 1 slot: this worker now runs 2 slots');
  assert.ok(rise > 0, `the worker never rose to two slots:\n${text}`);
  assert.equal(text.split('this worker now runs 2 slots').length, 2, 'it rose once');
  const whileLow = admissions(text.slice(text.indexOf('this worker now runs 1 slot'), rise));
  assert.ok(whileLow.length >= 3 && whileLow.every((a) => a.slots === 1 && a.busy === 1), `admitted after the drop: ${JSON.stringify(whileLow)}`);
  const pin = text.indexOf('with 2 slots: this worker now runs 1 slot from now on (out of memory twice with 2 slots)');
  assert.ok(pin > rise, `no pin after the rise:\n${text}`);
  const afterPin = admissions(text.slice(pin));
  assert.ok(afterPin.length >= 1 && afterPin.every((a) => a.slots === 1), `admitted after the pin: ${JSON.stringify(afterPin)}`);

  // The server's account: the candidates' trainings that ran out of memory completed on a later attempt,
  // after a retryable GPU_OUT_OF_MEMORY failure, never CandidateFailed.
  const retried = iterations.slice(1).flat().filter((t) => t.attempt > 1);
  assert.ok(retried.length >= 2, `too few trainings were retried: ${JSON.stringify(iterations)}`);
  for (const t of retried) {
    assert.equal(t.lastFailure?.type, 'GPU_OUT_OF_MEMORY', JSON.stringify(t));
    assert.match(t.lastFailure!.message, /^out of GPU memory at d\d+-L1-H2 with \d slots?/);
  }
  assert.ok(iterations[0].every((t) => t.attempt === 1), 'the baseline never ran out of memory');
  // A size that never fits ends as a failed run with this message (`evo status`), not an endless loop.
  assert.ok(retried.every((t) => t.maximumAttempts > t.attempt), JSON.stringify(retried));
});

test('the slots policy: one fewer after an out-of-memory, one more after three trainings fit, never above --slots, pinned below a number that ran out of memory twice, and settled', () => {
  const slots = new TrainingSlots(3);
  const fit = (n: number) => Array.from({ length: n }, () => slots.finished(slots.limit)).filter((c) => c !== null);
  assert.deepEqual(fit(10), [], 'at --slots nothing rises');
  assert.deepEqual(slots.outOfMemory(3), { limit: 2, pinned: false });
  assert.equal(slots.outOfMemory(3), null, 'a training that crowded the device with the first lowers nothing more');
  assert.deepEqual(fit(TRAININGS_BEFORE_RAISE - 1), []);
  assert.equal(slots.finished(3), null, 'a training admitted before the drop is no evidence');
  slots.outOfMemory(2);
  assert.equal(slots.limit, 1);
  assert.deepEqual(fit(TRAININGS_BEFORE_RAISE), [{ limit: 2, pinned: false }], 'an out-of-memory starts the count again');
  assert.deepEqual(fit(TRAININGS_BEFORE_RAISE), [{ limit: 3, pinned: false }]);
  assert.deepEqual(slots.outOfMemory(3), { limit: 2, pinned: true }, 'a second out-of-memory at three');
  assert.deepEqual(fit(100), []);
  assert.deepEqual(slots.outOfMemory(2), { limit: 1, pinned: true }, 'a second out-of-memory at two');
  assert.deepEqual(fit(100), []);
  assert.equal(slots.outOfMemory(1), null, 'never below one');
  assert.equal(slots.limit, 1);
});

test('a bad --slots is a one-line error from evo up and from the device worker', () => {
  const home = path.join(scratch, 'bad-slots');
  for (const [script, args] of [
    ['cli/evo.js', ['up', '--devices', 'cpu', '--slots', '0']],
    ['cli/evo.js', ['up', '--devices', 'cpu', '--slots', 'two']],
    ['cli/evo.js', ['up', '--devices', 'cpu', '--slots', '1.5']],
    ['workers/device.js', ['--slots', '0']],
    ['workers/device.js', ['--slots', '-1']],
  ] as const) {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', script), ...args], { encoding: 'utf8', env: { ...process.env, EVOSCALE_HOME: home }, timeout: 60_000 });
    assert.equal(r.status, 2, `${script} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^evo: error: .*--slots.*\n$/, `${script} ${args.join(' ')}`);
  }
  assert.ok(!fs.existsSync(path.join(home, 'workers')), 'nothing was started');
});
