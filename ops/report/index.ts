// `evo report`: a run's state from Temporal and its archive, drawn as one offline HTML file.
import { iterationWorkflowId } from '../../contract';
import { readProgramSource, readTrainingCurves, reportPath } from '../../archive';
import { writeFileAtomic } from '../../core/atomic-file';
import { EvoError } from '../../core/errors';
import { temporalUiUrl } from '../temporal/connection';
import { runSnapshot, type RunSnapshot } from '../runs';
import { renderCharts } from './charts';
import { reportHtml } from './page';

/** The report of a run as it stands now (finished, stopped, failed or still running). */
export async function renderReport(workflowId: string, snapshot?: RunSnapshot): Promise<string> {
  const snap = snapshot ?? (await runSnapshot(workflowId));
  const s = snap.summary;
  const hashes = s.iterations.map((it) => it.programHash).filter((h): h is string => h !== null);
  const curves = readTrainingCurves(workflowId, hashes);
  const charts = await renderCharts(s, curves, snap.iterationClosedAt, snap.settings?.evaluator.fitAxis ?? 'non_embedding');
  const baselineHash = s.iterations[0]?.programHash ?? null;
  const bestSource = s.best && s.best.iteration > 0 ? readProgramSource(workflowId, s.best.programHash) : null;
  const baselineSource = baselineHash ? readProgramSource(workflowId, baselineHash) : null;
  return reportHtml({
    snapshot: snap,
    charts,
    best: s.best && bestSource !== null ? { iteration: s.best.iteration, source: bestSource } : null,
    baseline: baselineSource !== null ? { source: baselineSource } : null,
    uiUrl: temporalUiUrl,
    iterationWorkflowId: (i) => iterationWorkflowId(workflowId, i),
    generatedAt: new Date(),
  });
}

/** Write the report to `out` (default: the run's folder in the archive); returns the file written. */
export async function writeReport(workflowId: string, out?: string): Promise<string> {
  const html = await renderReport(workflowId);
  const file = out ?? reportPath(workflowId);
  try {
    writeFileAtomic(file, html);
  } catch (err) {
    throw new EvoError(`cannot write the report to ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'UNWRITABLE');
  }
  return file;
}
