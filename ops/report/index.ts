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

/** Write the report to `out` (default: the run's folder in the archive); returns the file written and the run's Temporal status. */
export async function writeReport(workflowId: string, out?: string): Promise<{ file: string; temporalStatus: string }> {
  const snapshot = await runSnapshot(workflowId);
  const html = await renderReport(workflowId, snapshot);
  const file = out ?? reportPath(workflowId);
  try {
    writeFileAtomic(file, html);
  } catch (err) {
    throw new EvoError(`cannot write the report to ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'UNWRITABLE');
  }
  return { file, temporalStatus: snapshot.temporalStatus };
}

/** Rewrite the report every `everyS` seconds while the run is open, and once more when it has closed. */
export async function watchReport(workflowId: string, out: string | undefined, everyS: number, onWrite: (file: string, temporalStatus: string) => void): Promise<void> {
  for (;;) {
    const { file, temporalStatus } = await writeReport(workflowId, out);
    onWrite(file, temporalStatus);
    if (temporalStatus !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, everyS * 1000));
  }
}
