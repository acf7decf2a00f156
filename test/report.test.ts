// Specification of what a user sees of a run: `evo report` of a real micro run opened in headless
// Chromium and saved as a screenshot, the Web UI's entries read through the Temporal client, and trainings
// in flight in `evo status` and `evo start --wait`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { iterationWorkflowId, type RunSummary } from '../contract';
import { runSettings } from '../config/run-settings';
import { repoRoot } from '../core/paths';
import { configDigest, runSnapshot, startRun, waitForRun, type TrainingInFlight } from '../ops/runs';
import { trainingBarsOf, trainingsText } from '../ops/run-report';
import { trainingBars } from '../core/output';
import { lineageNodes } from '../ops/report/charts';
import { chromiumPath, renderReport } from '../ops/report';
import { startServerForRuns, type TestServer } from './helpers/temporal-server';
import { withWorkers } from './helpers/workers';

/** Debian's browser, installed by .ci/run; CHROMIUM_PATH names another. */
const CHROMIUM = chromiumPath();
/** Screenshots land here (gitignored) for a person to look at after the run. */
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');

let server: TestServer;
let bundle: WorkflowBundleWithSourceMap;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-report-'));
const logs: string[] = [];
const RUN = 'evo-test-report';
let summary: RunSummary;
/** Trainings `runSnapshot` saw in flight while the run went on. */
const seenInFlight: TrainingInFlight[] = [];
/** Trainings `waitForRun` reported in flight, as `evo start --wait` on a terminal draws them. */
const waitedInFlight: TrainingInFlight[] = [];
let midRunReport: string | undefined;
/** What `evo report --watch`, started with the run, printed before it exited. */
let watched: Promise<{ code: number | null; stdout: string }>;

function evo(...args: string[]) {
  return evoWith({}, ...args);
}

function evoWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Width and height from a PNG's header chunk, after checking its signature. */
function pngSize(file: string): { width: number; height: number } {
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file} is a PNG`);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN', (entry) => logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`)) });
  ({ server, bundle } = await startServerForRuns());
  Object.assign(process.env, {
    EVOSCALE_HOME: path.join(scratch, 'home'),
    EVOSCALE_RUNS_DIR: path.join(scratch, 'runs'),
    TEMPORAL_UI_URL: `http://127.0.0.1:${server.uiPort}`,
  });
  // The cheapest real run: the micro profile, the baseline and one candidate from the offline catalogue.
  const settings = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations: 1, heartbeatTimeoutS: 5 });
  summary = await withWorkers(server, bundle, logs, async () => {
    await startRun(settings, RUN);
    // `evo report --watch` follows the run from its start and ends by itself once the run closes.
    const watcher = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), 'report', RUN, '--watch', '2', '--out', path.join(scratch, 'watched.html')], { env: process.env });
    watched = new Promise((resolve) => {
      let stdout = '';
      watcher.stdout.on('data', (d) => (stdout += d));
      watcher.on('exit', (code) => resolve({ code, stdout }));
    });
    // As `evo start --wait` follows it, with the trainings in flight its bars draw.
    const done = waitForRun(RUN, () => {}, (trainings) => waitedInFlight.push(...trainings));
    let finished = false;
    void done.finally(() => (finished = true));
    // Poll as `evo status` would, to catch trainings in flight from their heartbeats.
    while (!finished) {
      const snap = await runSnapshot(RUN).catch(() => undefined);
      seenInFlight.push(...(snap?.trainings ?? []));
      // The report of the run while it goes on, once, as soon as a training is in flight.
      if (snap?.trainings.length && midRunReport === undefined) midRunReport = await renderReport(RUN, snap);
      await new Promise((r) => setTimeout(r, 300));
    }
    return done;
  });
});

after(async () => {
  await server?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Marks per chart as the SVG holds them: data marks only, not axes or legends. */
interface Marks {
  symbols: number;
  lines: number;
  rules: number;
  bars: number;
}

function expectedMarks(s: RunSummary, curveFiles: number): Record<string, Partial<Marks>> {
  const scored = s.iterations.filter((it) => it.fitness !== null).length;
  const trained = s.iterations.filter((it) => it.points.length > 0);
  const seedPoints = (it: RunSummary['iterations'][number]) => it.points.reduce((n, p) => n + p.valLossBySeed.length, 0);
  const out: Record<string, Partial<Marks>> = {
    fitness: { symbols: scored, rules: scored, lines: 1 },
    curves: { lines: curveFiles },
    lineage: { symbols: s.iterations.length, rules: 2 * (s.iterations.length - 1) },
    usage: { bars: s.iterations.length, lines: 1 },
  };
  for (const it of trained) {
    const withBaseline = it.iteration === 0 ? 0 : seedPoints(s.iterations[0]);
    out[`loss-vs-n-${it.iteration}`] = { symbols: seedPoints(it) + withBaseline, lines: it.iteration === 0 ? 1 : 2 };
  }
  return out;
}

test('evo report of a real micro run opens in headless Chromium with no console error and no network request, and draws every chart with a mark per record', async () => {
  assert.equal(summary.status, 'completed');
  assert.deepEqual(summary.iterations.map((it) => it.iteration), [0, 1]);
  const out = path.join(scratch, 'report.html');
  // --png alone: the screenshot lands beside the HTML, named after it.
  const r = evo('report', RUN, '--out', out, '--png');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `report written to ${out}\nscreenshot written to ${path.join(scratch, 'report.png')}\n`);
  // The whole page at the browser's 1280-pixel width: taller than one screen, as it has at least five charts.
  const shot = pngSize(path.join(scratch, 'report.png'));
  assert.equal(shot.width, 1280);
  assert.ok(shot.height > 900, `height ${shot.height}`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.copyFileSync(path.join(scratch, 'report.png'), path.join(ARTIFACTS, 'report.png'));
  const html = fs.readFileSync(out, 'utf8');
  // Self-contained: no script, no external stylesheet, image or font.
  assert.doesNotMatch(html, /<script|<link |src=|@import|url\(/i);

  // The loss curves were filed by the training activities: one per program, size and seed.
  const curveDir = path.join(scratch, 'runs', RUN, 'curves');
  const curveFiles = fs.readdirSync(curveDir).flatMap((h) => fs.readdirSync(path.join(curveDir, h)));
  const trainedPrograms = new Set(summary.iterations.filter((it) => it.points.length).map((it) => it.programHash)).size;
  assert.equal(curveFiles.length, trainedPrograms * 3);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('request', (req) => req.url() !== `file://${out}` && requests.push(req.url()));
    await page.goto(`file://${out}`, { waitUntil: 'load' });
    const charts: Record<string, Marks> = await page.evaluate(() => {
      // The page's DOM, typed only as far as used here (the project compiles without the DOM library).
      interface Node { querySelectorAll(sel: string): ArrayLike<Node>; getAttribute(name: string): string | null }
      const doc = (globalThis as unknown as { document: Node }).document;
      const count = (fig: Node, sel: string) => fig.querySelectorAll(sel).length;
      return Object.fromEntries(
        Array.from(doc.querySelectorAll('figure.chart')).map((fig) => [
          fig.getAttribute('data-chart')!,
          {
            symbols: count(fig, 'g.mark-symbol.role-mark > path'),
            lines: count(fig, 'g.mark-line.role-mark > path'),
            rules: count(fig, 'g.mark-rule.role-mark > line'),
            bars: count(fig, 'g.mark-rect.role-mark > path'),
          },
        ]),
      );
    });
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(requests, []);

    const expected = expectedMarks(summary, curveFiles.length);
    assert.ok(Object.keys(charts).length >= 5, `charts: ${Object.keys(charts).join(', ')}`);
    assert.deepEqual(Object.keys(charts).sort(), Object.keys(expected).sort());
    for (const [id, marks] of Object.entries(expected)) {
      for (const [kind, n] of Object.entries(marks)) assert.equal(charts[id][kind as keyof Marks], n, `${id}: ${kind}`);
    }

    // One table row per iteration, each linking to its iteration workflow in the Web UI.
    const links = await page.$$eval('table a', (as) => as.map((a) => a.getAttribute('href')));
    for (const it of summary.iterations) {
      assert.ok(links.includes(`http://127.0.0.1:${server.uiPort}/namespaces/default/workflows/${encodeURIComponent(iterationWorkflowId(RUN, it.iteration))}`), `a link to iteration ${it.iteration}`);
    }
  } finally {
    await browser.close();
  }
});

test('evo report of a run still going shows it running, with its trainings in flight', () => {
  assert.ok(midRunReport, 'a report was rendered while a training was in flight');
  assert.match(midRunReport!, /Temporal RUNNING/);
  assert.match(midRunReport!, /<h2>Trainings in flight<\/h2><table>.*<td>d\d+-L1-H2<\/td><td class="num">1234<\/td><td class="num">\d+\/40<\/td>/s);
});

test('evo report --watch rewrites the report while the run goes on and exits once it has closed', async () => {
  const { code, stdout } = await watched;
  assert.equal(code, 0);
  const lines = stdout.trim().split('\n');
  assert.ok(lines.length >= 2, stdout);
  assert.match(lines[0], /report written to .*watched\.html \(run RUNNING\)$/);
  assert.match(lines[lines.length - 1], /report written to .*watched\.html \(run COMPLETED\)$/);
  assert.match(fs.readFileSync(path.join(scratch, 'watched.html'), 'utf8'), /Temporal COMPLETED/);
});

test('the lineage hangs each iteration off the accepted iteration whose program it mutated', () => {
  const base = { points: [], fit: null, fitness: null, failedAttempts: [], proposals: 1, usage: summary.usage, description: '' };
  const nodes = lineageNodes({
    ...summary,
    iterations: [
      { ...base, iteration: 0, status: 'accepted', programHash: 'a', parentHash: null },
      { ...base, iteration: 1, status: 'accepted', programHash: 'b', parentHash: 'a' },
      { ...base, iteration: 2, status: 'rejected', programHash: 'c', parentHash: 'b' },
      { ...base, iteration: 3, status: 'invalid', programHash: null, parentHash: 'b' },
    ],
  });
  assert.deepEqual(nodes.map((n) => [n.id, n.parent]), [[0, null], [1, 0], [2, 1], [3, 1]]);
});

test('evo report --png names the file to write; without Chromium it is a one-line error naming what to install, and the HTML is still written', () => {
  const named = evo('report', RUN, '--png', path.join(scratch, 'named.png'), '--out', path.join(scratch, 'named.html'));
  assert.equal(named.code, 0, named.stderr);
  assert.match(named.stdout, /screenshot written to .*named\.png\n$/);
  assert.equal(pngSize(path.join(scratch, 'named.png')).width, 1280);

  const out = path.join(scratch, 'no-chromium.html');
  const missing = evoWith({ CHROMIUM_PATH: path.join(scratch, 'no-such-chromium') }, 'report', RUN, '--out', out, '--png');
  assert.equal(missing.code, 2);
  assert.equal(missing.stdout, `report written to ${out}\n`);
  assert.equal(
    missing.stderr,
    `evo: error: cannot render the PNG: no Chromium at ${path.join(scratch, 'no-such-chromium')} (install Debian's chromium package, or set CHROMIUM_PATH to a Chromium or Chrome binary); the HTML report is written to ${out}\n`,
  );
  assert.match(fs.readFileSync(out, 'utf8'), /Temporal COMPLETED/);
  assert.ok(!fs.existsSync(path.join(scratch, 'no-chromium.png')));
});

test('evo report of an unknown run, or to a folder it cannot write, is a one-line error', () => {
  const unknown = evo('report', 'no-such-run');
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim(), 'evo: error: no workflow no-such-run');
  const unwritable = evo('report', RUN, '--out', path.join(scratch, 'runs', RUN, 'summary.json', 'report.html'));
  assert.equal(unwritable.code, 2);
  assert.match(unwritable.stderr, /^evo: error: cannot write the report to .*report\.html: ENOTDIR\n$/);
});

test('evo report of a run that closed before recording anything says so in one line', async () => {
  const settings = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations: 1, heartbeatTimeoutS: 5 });
  await startRun(settings, 'evo-test-report-terminated');
  const connection = await server.connect();
  try {
    await new Client({ connection, namespace: server.namespace }).workflow.getHandle('evo-test-report-terminated').terminate('the test ends it at once');
  } finally {
    await connection.close();
  }
  const r = evo('report', 'evo-test-report-terminated');
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'evo: error: run evo-test-report-terminated closed (TERMINATED) before it recorded an iteration: nothing to show\n');
});

test('the Web UI shows each iteration with its summary and outcome, and the run with its live best and config digest', async () => {
  const connection = await server.connect();
  try {
    const client = new Client({ connection, namespace: server.namespace });
    const [baseline, candidate] = summary.iterations;
    const child = await client.workflow.getHandle(iterationWorkflowId(RUN, 1)).describe();
    assert.equal(await child.staticSummary(), `iteration 1: mutate ${baseline.programHash!.slice(0, 8)}, train 3 sizes × 1 seed`);
    assert.equal(await (await client.workflow.getHandle(iterationWorkflowId(RUN, 0)).describe()).staticSummary(), 'iteration 0: train the coefficient_dynamics baseline');
    // Current details come from the workflow (a query, as the UI asks it); a closed one is replayed by the worker.
    const details = await withWorkers(server, bundle, logs, async (c) => {
      const meta = (h: string) => c.workflow.getHandle(h).query<{ currentDetails: string }>('__temporal_workflow_metadata');
      return { child: (await meta(iterationWorkflowId(RUN, 1))).currentDetails, run: (await meta(RUN)).currentDetails };
    });
    assert.ok(candidate.vsParent, 'one seed still gives the point as its interval');
    const delta = candidate.vsParent!.value;
    assert.match(details.child, new RegExp(`^iteration 1: .+ — ${candidate.status}, Δ [+−]${Math.abs(delta).toFixed(4)} \\[`));
    assert.match(details.run, new RegExp(`^completed: 2 iterations recorded; plan: the baseline \\+ 1 iterations\\nbest: iteration ${summary.best!.iteration}, fitness `));
    const run = await client.workflow.getHandle(RUN).describe();
    const settings = runSettings({ framework: 'coefficient_dynamics', profile: 'micro', iterations: 1, heartbeatTimeoutS: 5 });
    assert.deepEqual(run.memo?.config, configDigest(settings));
    // The list filter the README shows finds the run by its search attributes.
    const found: string[] = [];
    for await (const wf of client.workflow.list({ query: `EvoFramework="coefficient_dynamics" AND EvoStatus="completed"` })) found.push(wf.workflowId);
    assert.deepEqual(found, [RUN]);
  } finally {
    await connection.close();
  }
});

test('evo status shows each training in flight: size, seed, step of steps, last loss and ETA, from its heartbeats', () => {
  assert.ok(seenInFlight.length > 0, 'a training was seen in flight');
  for (const t of seenInFlight) {
    assert.match(t.size, /^d\d+-L\d-H\d$/);
    assert.ok(t.step >= 0 && t.step <= t.steps && t.steps === 40, `${t.step}/${t.steps}`);
  }
  const text = trainingsText(seenInFlight.slice(0, 2));
  const lines = text.split('\n');
  assert.equal(lines[0], 'trainings in flight:');
  for (const [i, t] of seenInFlight.slice(0, 2).entries()) {
    assert.ok(lines[i + 1].includes(`${t.size} seed ${t.seed}  step ${t.step}/${t.steps}`), lines[i + 1]);
  }
});

test('evo start --wait on a terminal draws a bar per training in flight: iteration, size, seed, step of steps, last loss', () => {
  assert.ok(waitedInFlight.length > 0, 'following the run reported a training in flight');
  const shown = waitedInFlight.slice(-3);
  const lines = trainingBars(trainingBarsOf(shown), 200);
  for (const [i, t] of shown.entries()) {
    const iteration = Number(/iter-(\d+)$/.exec(t.workflowId)![1]);
    assert.ok([0, 1].includes(iteration), t.workflowId);
    assert.match(lines[i], new RegExp(`^iteration ${iteration}  ${t.size} seed ${t.seed} +\\[[#.]{12}\\] +${t.step}/40  (ETA [^ ]+( s| min| h)?|done) +train (\\d+\\.\\d{4}|—)`), lines[i]);
  }
});
