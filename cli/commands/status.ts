// `evo status`: the stack and all evolution runs, or one run's iteration table; Temporal's view of a
// run wins over its archive's, and a run that did not complete says why and what to do next.
import { table } from '../../core/output';
import type { CommandSpec } from '../spec';

export const status: CommandSpec = {
  name: 'status',
  summary: "show the stack and all runs, or one run's iterations, trainings in flight, LLM usage and stop reason",
  options: [],
  positionals: [{ name: 'workflowId', description: 'one run to show; default: the stack and every run' }],
  async run(_o, [workflowId]) {
    const { temporalUiUrl } = await import('../../ops/temporal/connection');
    const { listRuns, runSnapshot } = await import('../../ops/runs');
    if (workflowId) {
      const { renderSummary, trainingsText } = await import('../../ops/run-report');
      // What Temporal says wins: a run that failed is shown as failed, whatever its archive last said.
      const snap = await runSnapshot(workflowId);
      process.stdout.write(renderSummary(snap.summary, snap.status) + '\n');
      if (snap.temporalStatus === 'RUNNING') process.stdout.write(trainingsText(snap.trainings, process.stdout.isTTY === true) + '\n');
      else if (snap.failure !== undefined) process.stdout.write(`Temporal: ${snap.temporalStatus} — ${snap.failure}\nnext: ${snap.next}\n`);
      process.stdout.write(`Web UI: ${temporalUiUrl(workflowId) ?? '—'}\n`);
      return;
    }
    const { stackStatus } = await import('../../ops/stack');
    const stack = await stackStatus();
    process.stdout.write(`Temporal ${stack.server.running ? `up at ${stack.server.address}` : 'down'}${stack.server.uiUrl ? `   Web UI ${stack.server.uiUrl}` : ''}\n`);
    for (const w of stack.workers) process.stdout.write(`${w.name.padEnd(14)} ${w.running ? `running (pid ${w.pid})` : 'stopped'}\n`);
    if (!stack.server.running) return;
    const rows = (await listRuns(50)).map((r) => [r.workflowId, r.framework, r.temporalStatus, r.iteration, r.runStatus]);
    process.stdout.write('\n' + (rows.length ? table(['workflow', 'framework', 'temporal', 'iteration', 'run status'], rows) : 'no evolution runs yet') + '\n');
  },
};
