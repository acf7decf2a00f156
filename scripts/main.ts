// The main job (`npm start`): bring the local stack up, run a smoke-profile evolution of one
// framework for a few iterations, print each iteration as it lands, and leave the run in the UI.
import * as path from 'node:path';
import { parseDevices, stackUp } from '../ops/stack';
import { settingsFor, startRun, waitForRun } from '../ops/runs';
import { iterationLine, renderSummary } from '../ops/run-report';
import { temporalUiUrl } from '../ops/temporal/connection';
import { exitWithError, progress } from '../core/output';
import { runsDir } from '../core/paths';

async function main(): Promise<void> {
  const framework = process.env.EVOSCALE_FRAMEWORK ?? 'coefficient_dynamics';
  const profile = process.env.EVOSCALE_PROFILE ?? 'smoke';
  const iterations = Number(process.env.EVOSCALE_ITERATIONS ?? 3);
  progress('bringing up the local stack (Temporal dev server, control worker, device workers) …');
  const stack = await stackUp({ devices: parseDevices(process.env.EVOSCALE_DEVICES ?? 'auto'), log: progress });
  progress(`Temporal at ${stack.server.address}; workers: ${stack.workers.map((w) => w.name).join(', ')}`);
  const settings = settingsFor({ profile, iterations }, framework);
  const id = await startRun(settings);
  process.stdout.write(`started ${id}: ${framework}, ${profile} profile, baseline + ${iterations} iterations\n`);
  process.stdout.write(`Web UI: ${temporalUiUrl(id)}\n\n`);
  const summary = await waitForRun(id, (s, i) => process.stdout.write(iterationLine(s, i) + '\n'));
  process.stdout.write('\n' + renderSummary(summary) + '\n');
  process.stdout.write(`\narchive: ${path.relative(process.cwd(), runsDir(id)) || '.'}/ (summary.json, programs/, iterations/)\n`);
  process.stdout.write(`Web UI: ${temporalUiUrl(id)}\nThe stack keeps running so the run stays inspectable; \`npx evo down\` stops it.\n`);
}

main().catch(exitWithError);
