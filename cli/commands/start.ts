// `evo start`: one evolution workflow per framework, optionally followed to the end.
import { FRAMEWORKS, type RunSummary } from '../../contract';
import { LiveBlock, progress, trainingBars } from '../../core/output';
import type { CommandSpec } from '../spec';
import { PROFILE_CHOICES } from './options';

export const start: CommandSpec = {
  name: 'start',
  summary: 'start one evolution workflow per framework; print its workflow ID and Web UI link',
  options: [
    { name: 'framework', type: 'string', value: '<name|all>', required: true, description: `${FRAMEWORKS.join(', ')}, or all (one run each)` },
    { name: 'config', type: 'string', value: '<yaml>', description: 'run config; default: configs/<framework>.yaml' },
    { name: 'profile', type: 'string', value: PROFILE_CHOICES, description: "evaluator profile, overriding the config's; without --config, smoke" },
    { name: 'iterations', type: 'number', description: "iterations after the baseline; default: the config's max_iterations" },
    { name: 'seed', type: 'number', description: 'seed for the run and its evaluator' },
    { name: 'wait', type: 'boolean', description: 'follow the run: one line per iteration, then the final table; on a terminal, a progress bar per training in flight' },
  ],
  async run(o) {
    const { settingsFor, startRun, waitForRun } = await import('../../ops/runs');
    const { iterationLine, renderSummary, trainingBarsOf } = await import('../../ops/run-report');
    const { stackStatus } = await import('../../ops/stack');
    const { temporalUiUrl } = await import('../../ops/temporal/connection');
    const opts = { config: o.config as string | undefined, profile: o.profile as string | undefined, iterations: o.iterations as number | undefined, seed: o.seed as number | undefined };
    const frameworks = o.framework === 'all' ? [...FRAMEWORKS] : [o.framework as string];
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
    if (!o.wait) return;
    // On a terminal, the trainings in flight (from their heartbeats) are bars redrawn in place under the iteration lines.
    const bars = process.stderr.isTTY ? new LiveBlock(process.stderr) : null;
    for (const id of ids) {
      progress(`waiting for ${id} …`);
      const line = (sum: RunSummary, i: number) => process.stdout.write(`${id}  ${iterationLine(sum, i)}\n`);
      const s = bars
        ? await waitForRun(id, (sum, i) => bars.above(() => line(sum, i)), (trainings) => bars.show(trainingBars(trainingBarsOf(trainings), bars.columns, bars.rows)))
        : await waitForRun(id, line);
      bars?.show([]);
      process.stdout.write('\n' + renderSummary(s) + '\n');
    }
  },
};
