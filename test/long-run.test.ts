// Specification of a long run against a real Temporal server whose history limits are lowered, so the
// evolution continues as new many times within 200 iterations: the chain loses, repeats and reorders no
// iteration, its LLM usage adds up, `evo status` and summary.json agree with the result, no run's
// history comes near the limit the server enforces, and what the workflow carries and hands
// `writeRunSummary` grows by a small brief per iteration, not by the whole record.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { CONTROL_QUEUE, type EvolutionInput, type IterationInput, type IterationRecord, type PreparedData, type RunSettings, type RunState, type RunSummary } from '../contract';
import { composeSummary } from '../archive';
import { addTotals } from '../propose/llm/ledger';
import { defaultPayloadConverter } from '@temporalio/common';
import { FakeOpenAi, completion, errorReply } from './helpers/fake-openai';
import { controlBlock } from './helpers/controls';
import { evoOn, startServerForRuns, type TestServer } from './helpers/temporal-server';
import { withWorkers } from './helpers/workers';

/** The server suggests continuing as new past SUGGEST events and terminates a run past LIMIT. */
const SUGGEST = 200;
const LIMIT = 500;
const ITERATIONS = 200;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-long-run-'));
let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const logs: string[] = [];

before(async () => {
  process.env.EVOSCALE_HOME = path.join(work, 'home');
  process.env.EVOSCALE_RUNS_DIR = path.join(work, 'runs');
  ({ server, bundle } = await startServerForRuns({
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST, 'limit.historyCount.warn': LIMIT - 100, 'limit.historyCount.error': LIMIT },
  }));
});

after(async () => {
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const evo = (...args: string[]) => evoOn(server, ...args);

/** Each `writeRunSummary` input in a run's history: its size in bytes and the iterations it counts. */
async function summaryWrites(client: Client, workflowId: string, runId: string): Promise<{ bytes: number; iterations: number }[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes)
    .filter((a) => a?.activityType?.name === 'writeRunSummary')
    .map((a) => {
      const payload = a!.input!.payloads![0];
      return { bytes: payload.data!.length, iterations: defaultPayloadConverter.fromPayload<RunState>(payload).iterations.length };
    });
}

/** Every execution of one workflow id, oldest first, with its history length, the iterations it started from and the size of what it carried. */
async function chainOf(client: Client, workflowId: string) {
  const runs = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const desc = await client.workflow.getHandle(workflowId, wf.runId).describe();
    const page = await client.workflowService.getWorkflowExecutionHistory({ namespace: server.namespace, execution: { workflowId, runId: wf.runId }, maximumPageSize: 1 });
    const payload = page.history!.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
    const input = defaultPayloadConverter.fromPayload<EvolutionInput>(payload);
    runs.push({
      runId: wf.runId,
      status: wf.status.name,
      startTime: wf.startTime,
      events: Number(desc.raw.workflowExecutionInfo?.historyLength ?? 0),
      bytes: Number(desc.raw.workflowExecutionInfo?.historySizeBytes ?? 0),
      firstIteration: input.carried?.state?.iterations.length ?? 0,
      carriedBytes: input.carried ? payload.data!.length : 0,
      data: input.carried?.data,
      summaryWrites: await summaryWrites(client, workflowId, wf.runId),
      memo: desc.memo,
    });
  }
  return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

/** CPU seconds a process has used (Linux), for the figures the test prints. */
function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Polls `probe` until it returns a value, failing with `what` after `ms` (a bound for a hung run, not a pace). */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 600_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The micro profile proposed by the loopback LLM, one proposal per iteration, never out of budget or retries. */
function longRunSettings(iterations: number): RunSettings {
  const settings = runSettingsOf(loadRunConfig(defaultConfigPath('coefficient_dynamics'), { profile: 'micro', iterations }));
  settings.heartbeatTimeoutS = 60;
  settings.llm = { ...settings.llm!, budgetUsd: null, maxRetries: 100_000, maxRetryWaitS: 600 };
  settings.mutation = { ...settings.mutation, maxAttempts: 1 };
  return settings;
}

const LONG_RUN = 'evo-long-run';
/** Most bytes one more iteration may add to what the workflow carries: a brief and its LLM reply's charge, never its record. */
const BYTES_PER_ITERATION = 400;
/** What varies in size without growing: the last outcome's words, the best's points. */
const SLACK_BYTES = 1000;
let longRunData: PreparedData | undefined;

test(`a run of ${ITERATIONS} iterations continues as new within the server's history limits: no iteration lost, repeated or reordered, a pause survives the new run, usage adds up`, async () => {
  const started = Date.now();
  const llm = new FakeOpenAi();
  process.env.OPENAI_API_KEY = 'sk-test-evoscale-long-run-0123456789';
  process.env.OPENAI_BASE_URL = await llm.start();
  // Mostly replies without code (refused at once, nothing trained); every 50th iteration a program, one of
  // two, so after the first of each only validation runs and every training is a cache hit.
  const programs = [controlBlock('causal-mean'), controlBlock('baseline-split-scale')];
  const replyFor = (iteration: number) =>
    iteration % 50 === 1 ? completion(`A candidate.\n\n\`\`\`typescript\n${programs[Math.floor(iteration / 50) % 2]}\`\`\`\n`) : completion(`Proposal ${iteration}: I would rather not write code.`);
  // From iteration HOLD on, each iteration's proposal is held (429, retry at once) until the test has
  // signalled pause, so the pause lands during that iteration; this goes on until one such iteration was
  // the last of its run, i.e. the pause had to survive continuing as new.
  const HOLD = 100;
  let answered = 0;
  let held: number | undefined;
  const released = new Set<number>();
  let crossed = false;
  llm.respondWith(() => {
    const iteration = answered + 1;
    if (iteration >= HOLD && !crossed && !released.has(iteration)) {
      held = iteration;
      return errorReply(429, 'held by the test', { headers: { 'retry-after-ms': '20' } });
    }
    answered++;
    return replyFor(iteration);
  });
  const settings = longRunSettings(ITERATIONS);
  const id = LONG_RUN;
  try {
    const { summary, chain, status, listed, pauses } = await withWorkers(server, bundle, logs, async (client) => {
      const handle = await client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings }], memo: { config: { text: 'long run' } } });
      const pauses: { iteration: number; acrossNewRun: boolean }[] = [];
      for (let k = HOLD; !crossed; k++) {
        await until(`iteration ${k}'s proposal`, () => (held === k ? k : undefined));
        const runBefore = (await handle.describe()).runId;
        await handle.signal('pause');
        released.add(k);
        const paused = await until(`the pause during iteration ${k}`, async () => {
          const s = await handle.query<RunState>('status').catch(() => undefined);
          assert.ok(!s || s.iterations.length <= k + 1, `the pause signalled during iteration ${k} was lost: iteration ${k + 1} ran`);
          return s?.status === 'paused' ? s : undefined;
        });
        assert.equal(paused.iterations.length, k + 1, `paused right after iteration ${k}`);
        crossed = (await handle.describe()).runId !== runBefore;
        pauses.push({ iteration: k, acrossNewRun: crossed });
        await handle.signal('resume');
      }
      const summary = composeSummary((await handle.result()) as RunState);
      return { summary, chain: await chainOf(client, id), status: evo('status', id), listed: evo('status'), pauses };
    });
    const seconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage();
    console.error(`long run: ${ITERATIONS} iterations in ${seconds.toFixed(0)} s (this process ${((cpu.user + cpu.system) / 1e6).toFixed(0)} CPU s, the server ${cpuSeconds(server.pid()).toFixed(0)} CPU s) over ${chain.length} runs; events per run ${chain.map((r) => r.events).join(' ')}; history bytes ${Math.max(...chain.map((r) => r.bytes))} at most; paused after ${pauses.map((p) => p.iteration).join(', ')}`);

    // Several runs under one workflow id, each but the last continued as new, each under the limit.
    assert.ok(chain.length >= 3, `the run continued as new (${chain.length} executions)`);
    assert.deepEqual(chain.map((r) => r.status), [...chain.slice(1).map(() => 'CONTINUED_AS_NEW'), 'COMPLETED']);
    for (const r of chain) assert.ok(r.events < LIMIT, `a run's history of ${r.events} events stays under the server's limit of ${LIMIT}`);
    assert.ok(chain.every((r) => r.memo?.config !== undefined), 'every run in the chain keeps the memo');
    // Each run starts where the one before stopped.
    const starts = chain.map((r) => r.firstIteration);
    assert.equal(starts[0], 0);
    assert.deepEqual([...starts].sort((a, b) => a - b), starts);
    assert.equal(new Set(starts).size, starts.length);
    assert.ok(pauses.at(-1)!.acrossNewRun, 'a pause was signalled during the last iteration of a run and held in the next');

    assert.equal(summary.status, 'completed');
    assert.deepEqual(summary.iterations.map((it) => it.iteration), Array.from({ length: ITERATIONS + 1 }, (_, i) => i), 'every iteration once, in order');
    assert.equal(answered, ITERATIONS, 'one answered proposal per iteration: none was asked again after continuing as new');
    // The proposed programs (refused only when one is already the parent) were trained once each; later proposals of them hit the cache.
    for (const i of [1, 51, 101, 151]) {
      const it = summary.iterations[i];
      assert.ok(it.programHash !== null || /unchanged/.test(it.failedAttempts[0]?.error ?? ''), `iteration ${i}: ${it.status} ${it.error ?? ''}`);
    }
    const withPrograms = summary.iterations.filter((it) => it.programHash !== null);
    assert.deepEqual(withPrograms.map((it) => it.iteration).slice(0, 3), [0, 1, 51]);
    assert.ok(withPrograms.every((it) => it.iteration % 50 <= 1));
    assert.equal(new Set(withPrograms.map((it) => it.programHash)).size, 3);
    const sizes = settings.evaluator.sizes.length;
    assert.ok(fs.readdirSync(path.join(work, 'home', 'cache', 'results')).length <= 3 * sizes, 'no program was trained twice');
    // Usage: the run's totals are the sum of its iterations' and count every request, held ones as failed calls.
    assert.deepEqual(summary.usage, addTotals(...summary.iterations.map((it) => it.usage)));
    assert.equal(summary.usage.calls, llm.requests.length);
    assert.equal(summary.usage.failedCalls, llm.requests.length - ITERATIONS);
    assert.equal(summary.usage.promptTokens, 1000 * ITERATIONS);
    assert.equal(summary.usage.completionTokens, 200 * ITERATIONS);

    // The archive and `evo status` agree with the result.
    const archive = path.join(work, 'runs', id);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(archive, 'summary.json'), 'utf8')), summary);
    assert.equal(fs.readdirSync(path.join(archive, 'iterations')).length, ITERATIONS + 1);
    // summary.json holds every full record as the archive's iterations/ has it, while what the workflow
    // carries into each new run and hands each `writeRunSummary` grows by a small brief per iteration.
    const archived = JSON.parse(fs.readFileSync(path.join(archive, 'summary.json'), 'utf8')) as RunSummary;
    const records = Array.from({ length: ITERATIONS + 1 }, (_, i) => JSON.parse(fs.readFileSync(path.join(archive, 'iterations', `iter-${String(i).padStart(3, '0')}.json`), 'utf8')) as IterationRecord);
    assert.deepEqual(archived.iterations, records);
    assert.ok(records.every((r) => Array.isArray(r.points) && Array.isArray(r.failedAttempts) && r.usage.calls >= 0), 'full records');
    const writes = chain.flatMap((r) => r.summaryWrites).filter((w) => w.iterations > 0);
    assert.equal(writes.at(-1)!.iterations, ITERATIONS + 1, 'the last write counts every iteration');
    const grown = (from: { bytes: number; n: number }, to: { bytes: number; n: number }) => (to.bytes - from.bytes) / Math.max(1, to.n - from.n);
    const firstWrite = { bytes: writes[0].bytes, n: writes[0].iterations };
    for (const w of writes) assert.ok(w.bytes <= firstWrite.bytes + SLACK_BYTES + BYTES_PER_ITERATION * (w.iterations - firstWrite.n), `writeRunSummary's input of ${w.bytes} bytes at ${w.iterations} iterations grew by more than ${BYTES_PER_ITERATION} bytes an iteration from ${firstWrite.bytes} at ${firstWrite.n}`);
    const carried = chain.slice(1).map((r) => ({ bytes: r.carriedBytes, n: r.firstIteration }));
    for (const c of carried) assert.ok(c.bytes <= carried[0].bytes + SLACK_BYTES + BYTES_PER_ITERATION * (c.n - carried[0].n), `the input carried at ${c.n} iterations, ${c.bytes} bytes, grew by more than ${BYTES_PER_ITERATION} bytes an iteration from ${carried[0].bytes} at ${carried[0].n}`);
    const summaryBytes = fs.statSync(path.join(archive, 'summary.json')).size;
    const lastWrite = { bytes: writes.at(-1)!.bytes, n: writes.at(-1)!.iterations };
    console.error(
      `long run sizes: carried ${carried[0].bytes} B at ${carried[0].n} iterations, ${carried.at(-1)!.bytes} B at ${carried.at(-1)!.n} (${grown(carried[0], carried.at(-1)!).toFixed(0)} B an iteration); ` +
        `writeRunSummary input ${firstWrite.bytes} B at ${firstWrite.n}, ${lastWrite.bytes} B at ${lastWrite.n} (${grown(firstWrite, lastWrite).toFixed(0)} B an iteration); ` +
        `summary.json ${summaryBytes} B (${(summaryBytes / (ITERATIONS + 1)).toFixed(0)} B an iteration); largest history ${Math.max(...chain.map((r) => r.bytes))} B`,
    );
    longRunData = chain[1].data!;
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^${id} .* completed`, 'm'));
    assert.equal(status.stdout.split('\n').filter((l) => /^\s*\d+\s+(accepted|rejected|invalid)\b/.test(l)).length, ITERATIONS + 1, 'a row per iteration');
    const rows = listed.stdout.split('\n').filter((l) => l.startsWith(`${id} `));
    assert.equal(rows.length, 1, `the run is listed once, not once per execution:\n${listed.stdout}`);
    assert.match(rows[0], new RegExp(`^${id}\\s+coefficient_dynamics\\s+COMPLETED\\s+${ITERATIONS}\\s+completed\\s*$`));
    console.error(status.stdout.split('\n').slice(0, 12).join('\n'));
  } finally {
    delete process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_BASE_URL;
    await llm.close();
  }
});

test('a run continued as new by the code before its state was compact, carrying its whole summary, goes on from that summary', async () => {
  assert.ok(longRunData, 'the long run ran first');
  // Such a run's archive holds its records and programs (here the long run's first three iterations).
  const id = 'evo-long-run-whole-summary';
  const archive = path.join(work, 'runs', id);
  fs.cpSync(path.join(work, 'runs', LONG_RUN, 'programs'), path.join(archive, 'programs'), { recursive: true });
  fs.mkdirSync(path.join(archive, 'iterations'));
  const names = ['iter-000.json', 'iter-001.json', 'iter-002.json'];
  for (const name of names) fs.copyFileSync(path.join(work, 'runs', LONG_RUN, 'iterations', name), path.join(archive, 'iterations', name));
  const records = names.map((name) => JSON.parse(fs.readFileSync(path.join(archive, 'iterations', name), 'utf8')) as IterationRecord);
  const bestRecord = records.filter((r) => r.status === 'accepted' && r.fitness !== null && r.programHash).pop()!;
  const whole: RunSummary = {
    workflowId: id,
    framework: 'coefficient_dynamics',
    profile: 'micro',
    status: 'running',
    iterations: records,
    best: { iteration: bestRecord.iteration, fitness: bestRecord.fitness!, programHash: bestRecord.programHash! },
    usage: addTotals(...records.map((r) => r.usage)),
    dataHash: longRunData.hash,
  };
  const llm = new FakeOpenAi();
  process.env.OPENAI_API_KEY = 'sk-test-evoscale-long-run-0123456789';
  process.env.OPENAI_BASE_URL = await llm.start();
  llm.respondWith(() => completion('Proposal 3: I would rather not write code.'));
  try {
    const { state, childInput } = await withWorkers(server, bundle, logs, async (client) => {
      const carried = { summary: whole, data: longRunData! };
      const handle = await client.workflow.start('evolution', { taskQueue: CONTROL_QUEUE, workflowId: id, args: [{ settings: longRunSettings(3), carried }] });
      const state = (await handle.result()) as RunState;
      const started = (await client.workflow.getHandle(`${id}/iter-003`).fetchHistory()).events![0].workflowExecutionStartedEventAttributes!;
      return { state, childInput: defaultPayloadConverter.fromPayload<IterationInput>(started.input!.payloads![0]) };
    });
    assert.equal(state.status, 'completed');
    assert.deepEqual(state.iterations.map((it) => it.iteration), [0, 1, 2, 3], 'only iteration 3 ran');
    assert.equal(llm.requests.length, 1);
    // The child is scored and prompted as the whole summary would have had it.
    assert.deepEqual(childInput.history, records.map((r) => ({ programHash: r.programHash, fitness: r.fitness, status: r.status })));
    assert.deepEqual(childInput.baselinePoints, records[0].points);
    assert.deepEqual(childInput.parentPoints, bestRecord.points);
    assert.equal(childInput.parentHash, bestRecord.programHash);
    assert.equal(childInput.baselineHash, records[0].programHash);
    assert.equal(childInput.proposalIndex, records.reduce((n, r) => n + r.proposals, 0));
    const summary = JSON.parse(fs.readFileSync(path.join(archive, 'summary.json'), 'utf8')) as RunSummary;
    assert.deepEqual(summary, composeSummary(state));
    assert.deepEqual(summary.iterations.slice(0, 3), records, 'the carried records are kept as they were');
    assert.equal(summary.iterations[3].status, 'invalid');
    assert.deepEqual(summary.usage, addTotals(...summary.iterations.map((it) => it.usage)));
  } finally {
    delete process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_BASE_URL;
    await llm.close();
  }
});
