// Specification of the durable pipeline against a real Temporal server: runs complete, the
// archive agrees with the history, and killed workers or a restarted server lose no work.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { CATALOGUE } from '../propose/offline/catalogue';
import { FakeOpenAi, TEMPERATURE_DIFF, completion } from './helpers/fake-openai';
import { CONTROL_QUEUE, type RunSettings, type RunState, type RunSummary, type IterationRecord } from '../contract';
import { composeSummary } from '../archive';
import { runSettings } from '../config/run-settings';
import { repoRoot } from '../core/paths';
import { startServerForRuns, type TestServer } from './helpers/temporal-server';
import { controlBlock } from './helpers/controls';
import { startDeviceWorker as startWorkerProcess, withWorkers as withWorkersOn } from './helpers/workers';

let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-pipeline-'));

/** Every log line of the workers under test (this process's Temporal runtime and device workers). */
const logs: string[] = [];

before(async () => {
  Runtime.install({ logger: new DefaultLogger('INFO', (entry) => logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`)) });
  ({ server, bundle } = await startServerForRuns());
});

after(async () => {
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A fresh state and archive folder per test, shared by this process and its device workers. */
function useFolders(name: string): { home: string; runs: string } {
  const home = path.join(scratch, name, 'home');
  const runs = path.join(scratch, name, 'runs');
  fs.mkdirSync(home, { recursive: true });
  process.env.EVOSCALE_HOME = home;
  process.env.EVOSCALE_RUNS_DIR = runs;
  return { home, runs };
}

const startDeviceWorker = () => startWorkerProcess(server, logs);
const withWorkers = <T>(body: Parameters<typeof withWorkersOn<T>>[3]) => withWorkersOn(server, bundle, logs, body);

async function startEvolution(client: Client, settings: RunSettings, id: string) {
  return client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }] });
}

/** The workflow's result, or an error that carries the failure's root cause in its message. */
async function resultOf(handle: WorkflowHandle): Promise<RunSummary> {
  try {
    return composeSummary((await handle.result()) as RunState);
  } catch (err) {
    const chain: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) chain.push(e.message);
    throw new Error(chain.join(' ← '));
  }
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

async function historyOf(client: Client, workflowId: string): Promise<HistoryEvent[]> {
  return (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

/** Completed activities of a workflow with the attempt that completed them. */
function completedActivities(events: HistoryEvent[]): { type: string; attempt: number }[] {
  const byScheduled = new Map<string, { type: string; attempt: number }>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) byScheduled.set(String(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '', attempt: 0 });
    if (e.activityTaskStartedEventAttributes) byScheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId))!.attempt = e.activityTaskStartedEventAttributes.attempt ?? 0;
  }
  const out = [];
  for (const e of events) {
    if (e.activityTaskCompletedEventAttributes) out.push(byScheduled.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId))!);
  }
  return out;
}

function microSettings(overrides: Partial<RunSettings> & { steps?: number } = {}): RunSettings {
  const s = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations: overrides.iterations ?? 2, heartbeatTimeoutS: 5 });
  if (overrides.steps) s.evaluator.training = { ...s.evaluator.training, steps: overrides.steps, checkpointEvery: 10, evalEvery: overrides.steps };
  return { ...s, ...overrides, evaluator: s.evaluator };
}

test('an evolution completes; a refused candidate is recorded as invalid and the run goes on; summary.json agrees with the history', async () => {
  const { runs } = useFolders('files');
  const candidates = path.join(scratch, 'files', 'candidates');
  fs.mkdirSync(candidates, { recursive: true });
  fs.writeFileSync(path.join(candidates, '01-leaks-the-future.ts'), controlBlock('noncausal-coefficient_dynamics'));
  fs.writeFileSync(path.join(candidates, '02-causal-mean.ts'), controlBlock('causal-mean'));
  const settings = microSettings({ iterations: 2, mutation: { provider: 'files', dir: candidates, maxAttempts: 1 } });
  const id = 'evo-test-files';

  const result = await withWorkers(async (client) => {
    const handle = await startEvolution(client, settings, id);
    const summary = await resultOf(handle);
    // Each iteration's record is exactly what its child workflow returned (the history).
    for (const it of summary.iterations) {
      const child = (await client.workflow.getHandle(`${id}/iter-${String(it.iteration).padStart(3, '0')}`).result()) as IterationRecord;
      assert.deepEqual(child, it);
    }
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'COMPLETED');
    // Refresh the stored histories the replay spec checks workflow changes against.
    const record = process.env.EVOSCALE_RECORD_HISTORIES;
    if (record) {
      for (const wf of [id, ...summary.iterations.map((it) => `${id}/iter-${String(it.iteration).padStart(3, '0')}`)]) {
        const history = await client.workflow.getHandle(wf).fetchHistory();
        fs.writeFileSync(path.join(record, `${wf.replace(/\//g, '__')}.json`), historyToJSON(history));
      }
    }
    return summary;
  });

  assert.equal(result.status, 'completed');
  assert.deepEqual(result.iterations.map((it) => it.iteration), [0, 1, 2]);
  const [baseline, leak, mean] = result.iterations;
  assert.equal(baseline.status, 'accepted');
  assert.equal(baseline.points.length, 3);
  assert.equal(leak.status, 'invalid');
  assert.match(leak.error ?? '', /causal/i);
  assert.deepEqual(leak.points, []);
  assert.ok(mean.status === 'accepted' || mean.status === 'rejected');
  assert.equal(mean.points.length, 3);
  assert.equal(mean.parentHash, baseline.programHash);

  const onDisk = JSON.parse(fs.readFileSync(path.join(runs, id, 'summary.json'), 'utf8'));
  assert.deepEqual(onDisk, result);
  for (const it of [baseline, mean]) assert.ok(fs.existsSync(path.join(runs, id, 'programs', `${it.programHash}.ts`)));
  assert.ok(fs.existsSync(path.join(runs, id, 'iterations', 'iter-001.json')));
});

/**
 * Fresh folders and a micro run of two candidates from files: the causal mean (worse than softmax where
 * attention matters), then the baseline's function under another hash (exactly as good, so it must
 * pass a zero margin and never beat its parent).
 */
function worseThenSame(name: string): RunSettings {
  useFolders(name);
  const candidates = path.join(scratch, name, 'candidates');
  fs.mkdirSync(candidates, { recursive: true });
  fs.writeFileSync(path.join(candidates, '01-causal-mean.ts'), controlBlock('causal-mean'));
  const baseline = fs.readFileSync(path.join(repoRoot, 'frameworks', 'coefficient_dynamics.ts'), 'utf8');
  fs.writeFileSync(path.join(candidates, '02-baseline-renamed.ts'), baseline.replace('// EVOLVE-BLOCK-START\n', '// EVOLVE-BLOCK-START\n// the baseline, restated\n'));
  return microSettings({ iterations: 2, mutation: { provider: 'files', dir: candidates, maxAttempts: 1 } });
}

test('the cheap screen refuses a candidate worse than the baseline at the smallest size, and lets an equal one through to full training', async () => {
  const settings = worseThenSame('screen');
  settings.screen = { enabled: true, steps: 20, margin: 0 };
  const summary = await withWorkers(async (client) => resultOf(await startEvolution(client, settings, 'evo-test-screen')));
  const [, worse, same] = summary.iterations;
  assert.equal(worse.status, 'rejected');
  assert.match(worse.error ?? '', /screened out/);
  assert.deepEqual(worse.points, [], 'a screened-out candidate is not trained at full length');
  assert.ok(worse.screen && worse.screen.valLoss > worse.screen.baselineValLoss);
  assert.equal(same.points.length, 3, 'a candidate that passes the screen gets the full training');
  assert.equal(same.screen?.valLoss, same.screen?.baselineValLoss);
});

test('sequential evaluation: a candidate worse than its parent on each of its first seeds stops there; one that is not trains every seed', async () => {
  const settings = worseThenSame('early-stop');
  // Micro sizes where attention matters: copying segments in the data and 100 steps, so the causal
  // mean is worse than softmax on every seed. Three seeds: `auto` stops after 2.
  const ev = settings.evaluator;
  ev.seeds = [1234, 1235, 1236];
  ev.sizes = ev.sizes.slice(1);
  ev.training = { ...ev.training, steps: 100, batchSize: 16, warmupSteps: 10, evalEvery: 100, checkpointEvery: 50 };
  ev.data = { ...ev.data, copySegments: { fraction: 0.25, period: 2, length: 16, symbols: 16 } };
  const id = 'evo-test-early-stop';
  const { summary, trainings } = await withWorkers(async (client) => {
    const summary = await resultOf(await startEvolution(client, settings, id));
    const count = async (i: number) => completedActivities(await historyOf(client, `${id}/iter-00${i}`)).filter((a) => a.type === 'trainSize').length;
    return { summary, trainings: [await count(0), await count(1), await count(2)] };
  });
  const [base, worse, same] = summary.iterations;
  assert.deepEqual(trainings, [6, 4, 6], `the baseline and the equal candidate train 2 sizes × 3 seeds; the worse one 2 × 2 (${worse.decision})`);
  assert.equal(base.status, 'accepted');
  assert.equal(worse.status, 'rejected');
  assert.match(worse.decision ?? '', /^stopped after 2 of 3 seeds, worse than the parent on each \(−[0-9.]+, −[0-9.]+\); so the other seeds could not lift its interval above 0/);
  assert.ok(worse.points.every((p) => p.seeds.join() === '1234,1235' && p.valLossBySeed.length === 2));
  assert.ok(worse.vsParent && worse.vsParent.hi < 0 && worse.fitness! < 0);
  assert.equal(same.status, 'rejected', 'the same function is never better than its parent');
  assert.match(same.decision ?? '', /^not distinguishable from the parent/);
  assert.ok(same.points.every((p) => p.valLossBySeed.length === 3));
  const archived = JSON.parse(fs.readFileSync(path.join(process.env.EVOSCALE_RUNS_DIR!, id, 'summary.json'), 'utf8')) as RunSummary;
  assert.equal(archived.iterations[1].decision, worse.decision);
});

/** SIGKILLs the device worker mid-training, on tfjs or on the torch engine (EVOSCALE_ENGINE, which the worker hands its trainings). */
async function killMidTraining(t: TestContext, engine: 'tfjs' | 'torch'): Promise<void> {
  const { home } = useFolders(`kill-${engine}`);
  process.env.EVOSCALE_ENGINE = engine;
  t.after(() => {
    delete process.env.EVOSCALE_ENGINE;
  });
  const settings = microSettings({ iterations: 0, steps: 400 });
  const id = `evo-test-kill-${engine}`;
  const result = await withWorkers(async (client, device) => {
    const handle = await startEvolution(client, settings, id);
    // Wait for a checkpoint of some size to reach the disk, then kill the worker without warning.
    const trainDir = path.join(home, 'cache', 'train');
    const hasCheckpoint = () => fs.existsSync(trainDir) && fs.readdirSync(trainDir).some((k) => fs.existsSync(path.join(trainDir, k, engine === 'torch' ? 'checkpoint.pt' : 'checkpoint.bin')) && !fs.existsSync(path.join(trainDir, k, 'result.json')));
    const deadline = Date.now() + 240_000;
    while (!hasCheckpoint()) {
      assert.ok(Date.now() < deadline, 'no checkpoint appeared');
      await new Promise((r) => setTimeout(r, 100));
    }
    const killed = device.current;
    const gone = new Promise((r) => killed.once('exit', r));
    killed.kill('SIGKILL');
    await gone;
    device.current = startDeviceWorker();
    const summary = await resultOf(handle);
    const events = await historyOf(client, `${id}/iter-000`);
    return { summary, activities: completedActivities(events) };
  });
  const points = result.summary.iterations[0].points;
  assert.equal(points.length, 3);
  assert.ok(points.every((p) => p.backend.startsWith('torch') === (engine === 'torch')), `backends: ${points.map((p) => p.backend)}`);
  const resumed = points.filter((p) => p.resumedFromStep > 0);
  assert.equal(resumed.length, 1, `exactly the interrupted size resumed: ${JSON.stringify(points)}`);
  const retried = result.activities.filter((a) => a.attempt > 1);
  assert.deepEqual(retried.map((a) => a.type), ['trainSize'], 'only the interrupted training ran again');
  assert.equal(result.activities.filter((a) => a.type === 'trainSize').length, 3);
}

test('a device worker SIGKILLed mid-training: the restarted worker resumes from the checkpoint and no finished activity runs twice', (t) => killMidTraining(t, 'tfjs'));

test('a device worker SIGKILLed mid-training on the torch engine: the restarted worker resumes from its checkpoint and no finished activity runs twice', (t) => killMidTraining(t, 'torch'));

test('the server stopped and restarted on the same SQLite file mid-run: the run completes', async () => {
  const { runs } = useFolders('restart');
  const settings = microSettings({ iterations: 1, steps: 200 });
  const id = 'evo-test-restart';
  const summary = await withWorkers(async (client) => {
    await startEvolution(client, settings, id);
    // Restart once the baseline iteration is under way (its program is in the archive).
    const programs = path.join(runs, id, 'programs');
    const deadline = Date.now() + 120_000;
    while (!(fs.existsSync(programs) && fs.readdirSync(programs).length > 0)) {
      assert.ok(Date.now() < deadline, 'the run never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.restart();
    const fresh = await server.connect();
    try {
      const again = new Client({ connection: fresh, namespace: server.namespace });
      return await resultOf(again.workflow.getHandle(id));
    } finally {
      await fresh.close();
    }
  });
  assert.equal(summary.status, 'completed');
  assert.equal(summary.iterations.length, 2);
  assert.ok(summary.iterations[0].points.length === 3);
});

test('an LLM-guided run through an OpenAI-compatible API: diff and whole-block replies train, refusals feed the next prompt, the ledger adds up, the budget stops mutation, the key stays secret', async () => {
  const { runs } = useFolders('llm');
  const llm = new FakeOpenAi();
  const baseUrl = await llm.start();
  const key = 'sk-test-evoscale-0123456789abcdefghij';
  process.env.OPENAI_API_KEY = key;
  process.env.OPENAI_BASE_URL = baseUrl;
  const sigmoid = CATALOGUE.find((v) => v.id === 'cd-sigmoid')!.block;
  llm.script(
    completion('I would make the attention sharper, but I will not write code today.'),
    completion(TEMPERATURE_DIFF),
    completion(`Sigmoid readout.\n\n\`\`\`typescript\n${sigmoid}\`\`\`\n`),
  );
  const settings = runSettingsOf(loadRunConfig(defaultConfigPath('coefficient_dynamics'), { profile: 'micro', iterations: 3 }));
  settings.heartbeatTimeoutS = 5;
  // Each scripted call costs $0.00325 (1000 prompt + 200 completion tokens of gpt-5): two iterations fit.
  settings.llm = { ...settings.llm!, budgetUsd: 0.009 };
  const id = 'evo-test-llm';
  try {
    const summary = await withWorkers(async (client) => {
      const handle = await startEvolution(client, settings, id);
      const result = await resultOf(handle);
      const histories = [await historyOf(client, id), ...(await Promise.all(result.iterations.map((it) => historyOf(client, `${id}/iter-${String(it.iteration).padStart(3, '0')}`))))];
      assert.ok(!JSON.stringify(histories).includes(key), 'the API key is in no workflow history');
      return result;
    });
    assert.equal(llm.requests.length, 3, 'the budget stopped a fourth call');
    assert.ok(llm.requests.every((r) => r.headers.authorization === `Bearer ${key}`));
    assert.match(llm.requests[1].body.messages.map((m) => m.content).join('\n'), /no code/i, "the refusal's reason is in the next prompt");

    assert.equal(summary.status, 'stopped');
    assert.match(summary.reason ?? '', /budget/i);
    assert.deepEqual(summary.iterations.map((it) => it.iteration), [0, 1, 2]);
    const [, first, second] = summary.iterations;
    assert.equal(first.failedAttempts.length, 1);
    assert.equal(first.failedAttempts[0].kind, 'reply-refused');
    assert.equal(first.points.length, 3, 'the diff candidate trained');
    assert.match(fs.readFileSync(path.join(runs, id, 'programs', `${first.programHash}.ts`), 'utf8'), /logTau/);
    assert.equal(second.points.length, 3, 'the whole-block candidate trained');
    assert.equal(first.usage.calls, 2);
    assert.equal(second.usage.calls, 1);
    assert.equal(summary.usage.calls, 3);
    assert.equal(summary.usage.promptTokens, 3000);
    assert.equal(summary.usage.completionTokens, 600);
    assert.ok(Math.abs(summary.usage.costUsd - 3 * 0.00325) < 1e-9);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(runs, id, 'summary.json'), 'utf8')).usage, summary.usage);
    assert.ok(!logs.join('\n').includes(key), 'the API key is in no worker log');
  } finally {
    delete process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_BASE_URL;
    await llm.close();
  }
});
