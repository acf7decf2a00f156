// Evolution runs through the Temporal client: settings from a config, start, follow, query,
// signal and list. The CLI, `npm start` and the tests share these; output is the caller's.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { connectClient } from './temporal/connection';
import { EvoFramework, EvoStatus, EvoIteration } from '../contract/search-attributes';
import { CONTROL_QUEUE, type RunSettings, type RunSummary } from '../contract';
import { defaultConfigPath, loadRunConfig, runSettingsOf } from '../config/load';
import { chooseProvider } from '../propose';
import { assertFramework } from '../core/program';
import { EvoError } from '../core/errors';
import { progress } from '../core/output';

export interface RunOptions {
  /** A YAML config; default configs/<framework>.yaml with the smoke profile. */
  config?: string;
  profile?: string;
  iterations?: number;
  seed?: number;
}

/** A run's settings from its config: `config` as written, or the framework's shipped config on `profile` (default smoke). */
export function settingsFor(opts: RunOptions, framework: string): RunSettings {
  const cfg = opts.config
    ? loadRunConfig(opts.config, { profile: opts.profile, iterations: opts.iterations })
    : loadRunConfig(defaultConfigPath(assertFramework(framework)), { profile: opts.profile ?? 'smoke', iterations: opts.iterations });
  if (opts.config && cfg.framework !== framework && framework !== 'all') throw new EvoError(`config ${opts.config} is for ${cfg.framework}, not ${framework}`, 'USAGE');
  for (const n of cfg.notices) progress(`note: ${n}`);
  progress(chooseProvider(cfg).notice);
  const settings = runSettingsOf(cfg);
  const seed = opts.seed;
  return seed === undefined ? settings : { ...settings, seed, evaluator: { ...settings.evaluator, seeds: settings.evaluator.seeds.map((_, i) => seed + i) } };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** One client connection for `use`, closed afterwards; a workflow that does not exist becomes `notFound`. */
async function withClient<T>(use: (client: Client) => Promise<T>, notFound?: string): Promise<T> {
  const { client, connection } = await connectClient();
  try {
    return await use(client);
  } catch (err) {
    if (notFound && err instanceof WorkflowNotFoundError) throw new EvoError(notFound, 'NOT_FOUND');
    throw err;
  } finally {
    await connection.close();
  }
}

export function startRun(settings: RunSettings, workflowId?: string): Promise<string> {
  return withClient(async (client) => {
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
  });
}

export function queryRun(workflowId: string): Promise<RunSummary> {
  return withClient((client) => client.workflow.getHandle(workflowId).query<RunSummary>('status'), `no workflow ${workflowId}`);
}

/** `pause`, `resume` or `stop` one run (the evolution workflow's signals). */
export function signalRun(workflowId: string, signal: 'pause' | 'resume' | 'stop'): Promise<void> {
  return withClient((client) => client.workflow.getHandle(workflowId).signal(signal), `no running workflow ${workflowId}`);
}

/** Follow a run: report each iteration as it lands, return the final summary. */
export function waitForRun(workflowId: string, onIteration: (s: RunSummary, index: number) => void): Promise<RunSummary> {
  return withClient(async (client) => {
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
  });
}

export interface RunListing {
  workflowId: string;
  framework: string;
  /** Temporal's execution status (RUNNING, COMPLETED, …). */
  temporalStatus: string;
  iteration: string;
  /** The run's own status search attribute. */
  runStatus: string;
}

/** The most recent evolution runs, from their search attributes. */
export function listRuns(limit = 50): Promise<RunListing[]> {
  return withClient(async (client) => {
    const runs: RunListing[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'evolution'` })) {
      const sa = wf.typedSearchAttributes;
      runs.push({ workflowId: wf.workflowId, framework: String(sa.get(EvoFramework) ?? ''), temporalStatus: wf.status.name, iteration: String(sa.get(EvoIteration) ?? ''), runStatus: String(sa.get(EvoStatus) ?? '') });
      if (runs.length >= limit) break;
    }
    return runs;
  });
}
