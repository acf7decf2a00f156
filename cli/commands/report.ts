// `evo report <workflowId>`: one offline HTML file with a run's charts, lineage, best diff and candidates.
import { usageError, type CommandSpec } from '../spec';

export const report: CommandSpec = {
  name: 'report',
  summary: "write one self-contained HTML report of a run (finished, stopped, failed or running): charts, lineage, the best program's diff, every candidate",
  options: [
    { name: 'out', type: 'string', value: '<file.html>', description: 'where to write the report; default: report.html in the run\'s archive folder (runs/<workflowId>/)' },
    { name: 'watch', type: 'number', value: 'SECONDS', description: 'rewrite the report every SECONDS while the run is open, and once more when it closes' },
    { name: 'png', type: 'string', value: '[file.png]', optionalValueSuffix: '.png', description: 'also save a full-page screenshot, taken by headless Chromium (CHROMIUM_PATH, default /usr/bin/chromium); default file: the report\'s, ending .png' },
  ],
  positionals: [{ name: 'workflowId', required: true, description: 'the run, as `evo start` and `evo status` print it' }],
  async run(o, [workflowId]) {
    const { pngPathFor, screenshotReport, watchReport, writeReport } = await import('../../ops/report');
    const out = o.out as string | undefined;
    const png = o.png === undefined ? null : (file: string) => (o.png === true ? pngPathFor(file) : (o.png as string));
    if (o.watch === undefined) {
      const { file } = await writeReport(workflowId, out);
      process.stdout.write(`report written to ${file}\n`);
      if (png) process.stdout.write(`screenshot written to ${await screenshotReport(file, png(file))}\n`);
      return;
    }
    if ((o.watch as number) < 1) throw usageError('--watch must be at least 1 second', 'report');
    await watchReport(workflowId, out, o.watch as number, async (file, temporalStatus) => {
      process.stdout.write(`${new Date().toISOString()}  report written to ${file} (run ${temporalStatus})\n`);
      if (png) process.stdout.write(`${new Date().toISOString()}  screenshot written to ${await screenshotReport(file, png(file))}\n`);
    });
  },
};
