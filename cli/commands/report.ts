// `evo report <workflowId>`: one offline HTML file with a run's charts, lineage, best diff and candidates.
import { usageError, type CommandSpec } from '../spec';

export const report: CommandSpec = {
  name: 'report',
  summary: "write one self-contained HTML report of a run (finished, stopped, failed or running): charts, lineage, the best program's diff, every candidate",
  options: [
    { name: 'out', type: 'string', value: '<file.html>', description: 'where to write the report; default: report.html in the run\'s archive folder (runs/<workflowId>/)' },
    { name: 'watch', type: 'number', value: 'SECONDS', description: 'rewrite the report every SECONDS while the run is open, and once more when it closes' },
  ],
  positionals: [{ name: 'workflowId', required: true, description: 'the run, as `evo start` and `evo status` print it' }],
  async run(o, [workflowId]) {
    const { watchReport, writeReport } = await import('../../ops/report');
    const out = o.out as string | undefined;
    if (o.watch === undefined) {
      process.stdout.write(`report written to ${(await writeReport(workflowId, out)).file}\n`);
      return;
    }
    if ((o.watch as number) < 1) throw usageError('--watch must be at least 1 second', 'report');
    await watchReport(workflowId, out, o.watch as number, (file, temporalStatus) => process.stdout.write(`${new Date().toISOString()}  report written to ${file} (run ${temporalStatus})\n`));
  },
};
