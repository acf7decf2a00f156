// Specification of candidate iterations on the torch engine in the durable pipeline: a run whose config
// says `evaluator.engine: torch` traces and trains every candidate on torch through a real server and a
// real device worker, files each traced graph in its archive, and refuses at validation a candidate the
// engine cannot take, with the reason, rather than training it on tfjs or spending a training on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadRunConfig, runSettingsOf } from '../config/load';
import { CONTROL_QUEUE, type RunSettings, type RunSummary } from '../contract';
import { repoRoot } from '../core/paths';
import { runSnapshot } from '../ops/runs';
import { checkGraph, SUPPORTED_KERNELS } from '../trace/graph';
import { startServerForRuns, type TestServer } from './helpers/temporal-server';
import { runResult, withWorkers as withWorkersOn } from './helpers/workers';
import { controlBlock } from './helpers/controls';

let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-torch-pipeline-'));
const logs: string[] = [];

// One state folder for the file: the second run's baseline trainings are cache hits of the first's.
const home = path.join(scratch, 'home');
const runs = path.join(scratch, 'runs');

before(async () => {
  Runtime.install({ logger: new DefaultLogger('INFO', (entry) => logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`)) });
  ({ server, bundle } = await startServerForRuns());
  process.env.EVOSCALE_HOME = home;
  process.env.EVOSCALE_RUNS_DIR = runs;
  // The run's config must decide: no engine from this process's environment reaches the device worker.
  delete process.env.EVOSCALE_ENGINE;
});

after(async () => {
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const withWorkers = <T>(body: (client: Client) => Promise<T>) => withWorkersOn(server, bundle, logs, body);

/** A micro run of coefficient dynamics whose YAML config asks for the torch engine. */
function torchRunSettings(iterations: number): RunSettings {
  const file = path.join(scratch, `torch-${iterations}.yaml`);
  fs.writeFileSync(
    file,
    `framework: coefficient_dynamics
max_iterations: ${iterations}
llm:
  provider: offline
  primary_model: none
prompt:
  system_message: Evolve the attention layer.
evaluator:
  profile: micro
  engine: torch
`,
  );
  return runSettingsOf(loadRunConfig(file));
}

async function runToEnd(client: Client, settings: RunSettings, id: string): Promise<RunSummary> {
  return runResult(await client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }] }), logs);
}

/** The type of every activity a workflow scheduled, in order. */
async function scheduledActivities(client: Client, workflowId: string): Promise<string[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  return events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : []));
}

/** Every training result the state folder's cache holds, by the program it trained. */
function cachedResults(): { program: string; backend: string }[] {
  const dir = path.join(home, 'cache', 'results');
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))) : [];
}

test('with evaluator.engine: torch in the config, catalogue candidates are traced and trained on torch by the device worker, scored and selected as usual, and every traced graph is filed in the run archive under its hash', async () => {
  const settings = torchRunSettings(2);
  assert.deepEqual(settings.evaluator.engine, { engine: 'torch', precision: 'fp32', compile: false });
  const id = 'evo-test-torch-candidates';
  const seen: { workflowId: string; size: string; step: number }[] = [];
  const { summary, started } = await withWorkers(async (client) => {
    const done = runToEnd(client, settings, id);
    // Follow the trainings in flight from the training activities' heartbeats, as `evo status` does.
    let started: RunSettings | null = null;
    let finished = false;
    void done.finally(() => (finished = true)).catch(() => {});
    while (!finished) {
      const snap = await runSnapshot(id).catch(() => null);
      if (snap) {
        started ??= snap.settings;
        seen.push(...snap.trainings.map((t) => ({ workflowId: t.workflowId, size: t.size, step: t.step })));
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { summary: await done, started };
  });

  // The config's engine travelled in the workflow's input, as every setting does.
  assert.deepEqual(started?.evaluator.engine, settings.evaluator.engine);
  assert.equal(summary.status, 'completed');
  const [baseline, ...candidates] = summary.iterations;
  assert.equal(candidates.length, 2);
  for (const it of candidates) {
    assert.ok(it.status === 'accepted' || it.status === 'rejected', `iteration ${it.iteration}: ${it.status} ${it.error ?? ''}`);
    assert.ok(it.vsParent && it.decision, 'selected by the fitness against its parent');
    assert.ok(
      seen.some((t) => t.workflowId === `${id}/iter-00${it.iteration}`),
      `a heartbeat of iteration ${it.iteration}'s trainings: ${JSON.stringify(seen.slice(-5))}`,
    );
  }
  for (const it of summary.iterations) {
    assert.equal(it.points.length, 3);
    for (const p of it.points) {
      assert.match(p.backend, /^torch/, `iteration ${it.iteration} ${p.size} trained on ${p.backend}`);
      // The graph the point names is in the archive beside the program, content-addressed and whole.
      assert.match(p.graph ?? '', /^[0-9a-f]{16}$/, `iteration ${it.iteration} ${p.size} names its graph`);
      const file = path.join(runs, id, 'graphs', `${p.graph}.json`);
      const size = settings.evaluator.sizes.find((s) => s.name === p.size)!;
      const graph = checkGraph(JSON.parse(fs.readFileSync(file, 'utf8')), { batch: 8, seqLen: 16, dModel: size.dModel, nHeads: size.nHeads });
      assert.equal(graph.hash, p.graph);
      assert.ok(graph.kernels.every((k) => (SUPPORTED_KERNELS as readonly string[]).includes(k)));
    }
    assert.ok(fs.existsSync(path.join(runs, id, 'programs', `${it.programHash}.ts`)));
    // iter-NNN.json holds the same points, graph hashes included.
    const record = JSON.parse(fs.readFileSync(path.join(runs, id, 'iterations', `iter-00${it.iteration}.json`), 'utf8'));
    assert.deepEqual(record.points.map((p: { graph: string }) => p.graph), it.points.map((p) => p.graph));
  }
  // Each candidate's graphs are its own code traced, not the baseline's.
  for (const it of candidates) {
    if (it.programHash !== baseline.programHash) assert.notDeepEqual(it.points.map((p) => p.graph), baseline.points.map((p) => p.graph));
  }
  const archived = fs.readdirSync(path.join(runs, id, 'graphs')).sort();
  assert.deepEqual(archived, [...new Set(summary.iterations.flatMap((it) => it.points.map((p) => `${p.graph}.json`)))].sort(), 'the archive holds exactly the graphs its points name');
  assert.ok(cachedResults().every((r) => r.backend.startsWith('torch')), 'nothing trained on tfjs');
});

test('on the torch engine, a candidate that uses a kernel the engine lacks, or reads a traced value back, is refused by validation with the reason and never trained, on any engine; the screen\'s graph is archived too', async () => {
  const settings = torchRunSettings(4);
  const candidates = path.join(scratch, 'untraceable');
  fs.mkdirSync(candidates, { recursive: true });
  // tfjs runs both fine; on a run asking for torch, validation traces them as the engine's trainings would.
  const baseline = fs.readFileSync(path.join(repoRoot, 'frameworks', 'coefficient_dynamics.ts'), 'utf8');
  const sine = baseline.replace('const h = tf.mul(k, 1 / Math.sqrt(d));', 'const h = tf.mul(tf.sin(k), 1 / Math.sqrt(d));');
  const reads = baseline.replace('  const y = tf.matMul(alpha, v);', '  const peak = tf.max(tf.abs(v)).dataSync()[0];\n  const y = tf.matMul(peak > 1e30 ? tf.zerosLike(alpha) : alpha, v);');
  // Validation traces at its batch of 2; a block that uses Sin only at a larger batch (training's is 8)
  // passes there and is refused at its first torch training, the backstop.
  const sineAtTrainingBatch = baseline.replace('const h = tf.mul(k, 1 / Math.sqrt(d));', 'const h = tf.mul(B > 4 ? tf.sin(k) : k, 1 / Math.sqrt(d));');
  assert.ok(sine !== baseline && reads !== baseline && sineAtTrainingBatch !== baseline);
  fs.writeFileSync(path.join(candidates, '01-sine-keys.ts'), sine);
  fs.writeFileSync(path.join(candidates, '02-reads-values.ts'), reads);
  fs.writeFileSync(path.join(candidates, '03-sine-at-training-batch.ts'), sineAtTrainingBatch);
  fs.writeFileSync(path.join(candidates, '04-causal-mean.ts'), controlBlock('causal-mean'));
  settings.mutation = { provider: 'files', dir: candidates, maxAttempts: 1 };
  settings.screen = { enabled: true, steps: 20, margin: 0 };
  const id = 'evo-test-torch-untraceable';

  let scheduled: string[][] = [];
  const summary = await withWorkers(async (client) => {
    const s = await runToEnd(client, settings, id);
    scheduled = await Promise.all(s.iterations.map((it) => scheduledActivities(client, `${id}/iter-${String(it.iteration).padStart(3, '0')}`)));
    return s;
  });

  assert.equal(summary.status, 'completed');
  const [base, sin, read, batchSin, mean] = summary.iterations;
  assert.ok(base.points.every((p) => p.backend.startsWith('torch') && p.graph));
  assert.equal(sin.status, 'invalid');
  assert.equal(sin.error, 'every proposal was refused; last: trace: the block uses kernel Sin, which the torch engine does not implement');
  assert.equal(read.status, 'invalid');
  assert.equal(read.error, 'every proposal was refused; last: trace: the block reads tensor values with dataSync(), so its graph would depend on the data');
  assert.equal(batchSin.status, 'invalid');
  assert.match(batchSin.error ?? '', /^training failed: trace: the block uses kernel Sin, which the torch engine does not implement/);
  assert.ok(scheduled[batchSin.iteration].includes('trainSize'));
  for (const it of [sin, read]) {
    assert.deepEqual(it.failedAttempts?.map((a) => a.kind), ['validation-failed']);
    assert.ok(!scheduled[it.iteration].includes('trainSize'), `a refused candidate had a training attempt: ${scheduled[it.iteration]}`);
  }
  for (const it of [sin, read, batchSin]) {
    assert.deepEqual(it.points, []);
    assert.ok(fs.existsSync(path.join(runs, id, 'programs', `${it.programHash}.ts`)), 'the refused program is archived');
    assert.ok(!cachedResults().some((r) => r.program === it.programHash), 'no training result of the refused program, on any engine');
    assert.ok(!fs.existsSync(path.join(runs, id, 'curves', it.programHash!)), 'no training curve of the refused program');
  }
  // Screened out or not, the screen trained the candidate on torch: its graph is in the archive.
  assert.ok(mean.status === 'rejected' || mean.status === 'accepted', `${mean.status} ${mean.error ?? ''}`);
  assert.match(mean.screen?.graph ?? '', /^[0-9a-f]{16}$/);
  assert.ok(fs.existsSync(path.join(runs, id, 'graphs', `${mean.screen!.graph}.json`)));
});

test('evo evaluate --engine torch trains on torch even where EVOSCALE_ENGINE says tfjs, and names each size\'s graph; a bad engine is one line', () => {
  const evo = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), 'evaluate', '--framework', 'coefficient_dynamics', '--profile', 'micro', ...args], {
      encoding: 'utf8',
      env: { ...process.env, EVOSCALE_ENGINE: 'tfjs' },
    });
  // The baseline's torch trainings are the runs' cache hits (same key), so this trains nothing new.
  const r = evo('--engine', 'torch', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { points: { backend: string; graph?: string }[] };
  assert.equal(out.points.length, 3);
  for (const p of out.points) {
    assert.match(p.backend, /^torch/);
    assert.ok(fs.existsSync(path.join(home, 'cache', 'graphs', `${p.graph}.json`)), `graph ${p.graph} in the graph store`);
  }
  const bad = evo('--engine', 'jax');
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim(), 'evo: error: unknown engine "jax" (expected auto, tfjs, torch)');
});
