// `evo up|down|start|status`: the local stack and evolution runs on Temporal.
import { WorkflowNotFoundError } from '@temporalio/client';
import { connectClient, temporalUiUrl } from '../ops/temporal/connection';
import { EvoFramework, EvoStatus, EvoIteration } from '../contract/search-attributes';
import { FRAMEWORKS } from '../core/program';
import { CONTROL_QUEUE, type RunSettings, type RunSummary } from '../contract';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { chooseProvider } from '../propose';
import { formatTotals } from '../propose/llm/ledger';
import { assertFramework } from '../core/program';
import { parseDevices, stackDown, stackStatus, stackUp } from '../ops/stack';
import { EvoError } from '../core/errors';
import { fmtLoss, progress, table } from './output';

export async function upCommand(devicesSpec: string): Promise<void> {
  const s = await stackUp({ devices: parseDevices(devicesSpec), log: progress });
  process.stdout.write(`Temporal  ${s.server.address}${s.server.uiUrl ? `   Web UI ${s.server.uiUrl}` : ''}\n`);
  for (const w of s.workers) process.stdout.write(`${w.name.padEnd(14)} pid ${w.pid}   log ${w.logFile}\n`);
}

export async function downCommand(): Promise<void> {
  await stackDown((l) => process.stdout.write(l + '\n'));
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export async function startRun(settings: RunSettings, workflowId?: string): Promise<string> {
  const { client, connection } = await connectClient();
  try {
    const id = workflowId ?? `evo-${settings.framework}-${settings.evaluator.profile}-${timestamp()}`;
    await client.workflow.start('evolution', {
      taskQueue: CONTROL_QUEUE,
      workflowId: id,
      args: [{ settings }],
      typedSearchAttributes: [
        { key: EvoFramework, value: settings.framework },
        { key: EvoStatus, value: 'running' },
        { key: EvoIteration, value: 0 },
      ],
      staticSummary: `evolve ${settings.framework} attention, ${settings.evaluator.profile} profile, ${settings.iterations} iterations`,
    });
    return id;
  } finally {
    await connection.close();
  }
}

export function renderSummary(s: RunSummary): string {
  const rows = s.iterations.map((it) => {
    const bestSoFar = Math.max(...s.iterations.filter((x) => x.iteration <= it.iteration && x.status === 'accepted' && x.fitness !== null).map((x) => x.fitness!));
    return [
      String(it.iteration),
      it.status,
      fmtLoss(it.fitness),
      it.fit ? fmtLoss(it.fit.r2, 3) : '—',
      it.points.length ? fmtLoss(it.points[it.points.length - 1].valLoss) : '—',
      Number.isFinite(bestSoFar) ? fmtLoss(bestSoFar) : '—',
      (it.error ?? it.description).slice(0, 70),
    ];
  });
  return [
    `${s.workflowId}   ${s.framework}   profile ${s.profile}   ${s.status}`,
    table(['iter', 'status', 'fitness', 'R²', 'loss@largest', 'best so far', 'candidate'], rows),
    s.best ? `best: iteration ${s.best.iteration}, fitness ${s.best.fitness.toFixed(4)}, program ${s.best.programHash}` : 'best: none yet',
    `LLM usage: ${formatTotals(s.usage)}`,
    ...(s.reason ? [s.reason] : []),
  ].join('\n');
}

export async function queryRun(workflowId: string): Promise<RunSummary> {
  const { client, connection } = await connectClient();
  try {
    return await client.workflow.getHandle(workflowId).query<RunSummary>('status');
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new EvoError(`no workflow ${workflowId}`, 'NOT_FOUND');
    throw err;
  } finally {
    await connection.close();
  }
}

/** Follow a run: print each iteration as it lands, return the final summary. */
export async function waitForRun(workflowId: string, onIteration: (s: RunSummary, index: number) => void): Promise<RunSummary> {
  const { client, connection } = await connectClient();
  try {
    const handle = client.workflow.getHandle(workflowId);
    let shown = 0;
    const show = (s: RunSummary) => {
      for (; shown < s.iterations.length; shown++) onIteration(s, shown);
    };
    for (;;) {
      const desc = await handle.describe();
      if (desc.status.name !== 'RUNNING') {
        const result = (await handle.result()) as RunSummary;
        show(result);
        return result;
      }
      try {
        show(await handle.query<RunSummary>('status'));
      } catch {
        // A query can fail while the workflow continues as new or no worker is up yet: try again.
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    await connection.close();
  }
}

export function iterationLine(s: RunSummary, i: number): string {
  const it = s.iterations[i];
  const best = s.iterations.slice(0, i + 1).filter((x) => x.status === 'accepted' && x.fitness !== null).map((x) => x.fitness!);
  return `iteration ${String(it.iteration).padStart(3)}  ${it.status.padEnd(8)}  fitness ${fmtLoss(it.fitness).padStart(8)}  best so far ${best.length ? fmtLoss(Math.max(...best)) : '—'}  ${(it.error ?? it.description).slice(0, 80)}`;
}

export interface StartOptions {
  framework: string;
  /** A YAML config; default configs/<framework>.yaml with the smoke profile. */
  config?: string;
  profile?: string;
  iterations?: number;
  seed?: number;
  wait: boolean;
}

/** A run's settings from its config: `--config` as written, or the framework's shipped config on `--profile` (default smoke). */
export function settingsFor(opts: StartOptions, framework: string): RunSettings {
  const cfg = opts.config
    ? loadRunConfig(opts.config, { profile: opts.profile, iterations: opts.iterations })
    : loadRunConfig(defaultConfigPath(assertFramework(framework)), { profile: opts.profile ?? 'smoke', iterations: opts.iterations });
  if (opts.config && cfg.framework !== framework && framework !== 'all') throw new EvoError(`config ${opts.config} is for ${cfg.framework}, not ${framework}`, 'USAGE');
  for (const n of cfg.notices) progress(`note: ${n}`);
  progress(chooseProvider(cfg).notice);
  const settings = runSettingsOf(cfg);
  return opts.seed === undefined ? settings : { ...settings, seed: opts.seed, evaluator: { ...settings.evaluator, seeds: settings.evaluator.seeds.map((_, i) => opts.seed! + i) } };
}

export async function startCommand(opts: StartOptions): Promise<void> {
  const frameworks = opts.framework === 'all' ? [...FRAMEWORKS] : [opts.framework];
  // Every config is read and checked before anything starts.
  const runs = frameworks.map((framework) => settingsFor(opts, framework));
  if (!process.env.TEMPORAL_ADDRESS) {
    const { workers } = await stackStatus();
    const up = (prefix: string) => workers.some((w) => w.running && w.name.startsWith(prefix));
    if (!up('control') || !up('device')) progress('note: no local control or device worker is running; the run waits for them (start them with `npx evo up`)');
  }
  const ids: string[] = [];
  for (const settings of runs) {
    const id = await startRun(settings);
    ids.push(id);
    process.stdout.write(`started ${id}\n  Web UI: ${temporalUiUrl(id) ?? '(set TEMPORAL_UI_URL)'}\n`);
  }
  if (!opts.wait) return;
  for (const id of ids) {
    progress(`waiting for ${id} …`);
    const s = await waitForRun(id, (sum, i) => process.stdout.write(`${id}  ${iterationLine(sum, i)}\n`));
    process.stdout.write('\n' + renderSummary(s) + '\n');
  }
}

/** `evo pause|resume|stop <workflowId>`: signals the evolution workflow handles. */
export async function signalCommand(signal: 'pause' | 'resume' | 'stop', workflowId: string): Promise<void> {
  const { client, connection } = await connectClient();
  try {
    await client.workflow.getHandle(workflowId).signal(signal);
    process.stdout.write(`sent ${signal} to ${workflowId}\n`);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new EvoError(`no running workflow ${workflowId}`, 'NOT_FOUND');
    throw err;
  } finally {
    await connection.close();
  }
}

export async function statusCommand(workflowId?: string): Promise<void> {
  if (workflowId) {
    process.stdout.write(renderSummary(await queryRun(workflowId)) + '\n');
    process.stdout.write(`Web UI: ${temporalUiUrl(workflowId) ?? '—'}\n`);
    return;
  }
  const stack = await stackStatus();
  process.stdout.write(`Temporal ${stack.server.running ? `up at ${stack.server.address}` : 'down'}${stack.server.uiUrl ? `   Web UI ${stack.server.uiUrl}` : ''}\n`);
  for (const w of stack.workers) process.stdout.write(`${w.name.padEnd(14)} ${w.running ? `running (pid ${w.pid})` : 'stopped'}\n`);
  if (!stack.server.running) return;
  const { client, connection } = await connectClient();
  try {
    const rows: string[][] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'evolution'` })) {
      const sa = wf.typedSearchAttributes;
      rows.push([wf.workflowId, String(sa.get(EvoFramework) ?? ''), wf.status.name, String(sa.get(EvoIteration) ?? ''), String(sa.get(EvoStatus) ?? '')]);
      if (rows.length >= 50) break;
    }
    process.stdout.write('\n' + (rows.length ? table(['workflow', 'framework', 'temporal', 'iteration', 'run status'], rows) : 'no evolution runs yet') + '\n');
  } finally {
    await connection.close();
  }
}
