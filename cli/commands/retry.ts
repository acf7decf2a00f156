// `evo retry <workflowId>`: continue a run that did not complete (failed, terminated, timed out) from the
// step that did not finish, with Temporal's reset; finished iterations are kept, finished trainings cached.
import type { CommandSpec } from '../spec';

export const retry: CommandSpec = {
  name: 'retry',
  summary: 'continue a failed run from the step that did not finish (finished iterations are kept)',
  options: [],
  positionals: [{ name: 'workflowId', required: true, description: 'the run, as `evo start` and `evo status` print it' }],
  async run(_o, [workflowId]) {
    const { retryRun } = await import('../../ops/runs');
    const { temporalUiUrl } = await import('../../ops/temporal/connection');
    const r = await retryRun(workflowId);
    process.stdout.write(`continuing ${workflowId} from ${r.step} (reset to event ${r.eventId}, new execution ${r.runId}); follow it with \`evo status ${workflowId}\`\n`);
    process.stdout.write(`Web UI: ${temporalUiUrl(workflowId) ?? '—'}\n`);
  },
};
