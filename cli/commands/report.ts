// `evo report <workflowId>`: one offline HTML file with a run's charts, lineage, best diff and candidates.
import type { CommandSpec } from '../spec';

export const report: CommandSpec = {
  name: 'report',
  summary: "write one self-contained HTML report of a run (finished, stopped, failed or running): charts, lineage, the best program's diff, every candidate",
  options: [{ name: 'out', type: 'string', value: '<file.html>', description: 'where to write the report; default: report.html in the run\'s archive folder (runs/<workflowId>/)' }],
  positionals: [{ name: 'workflowId', required: true, description: 'the run, as `evo start` and `evo status` print it' }],
  async run(o, [workflowId]) {
    const { writeReport } = await import('../../ops/report');
    const file = await writeReport(workflowId, o.out as string | undefined);
    process.stdout.write(`report written to ${file}\n`);
  },
};
