// `evo report`: a run's state from Temporal and its archive, drawn as one offline HTML file (and, on
// request, a screenshot of it taken by headless Chromium).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
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

/** The browser `--png` drives: CHROMIUM_PATH, else Debian's chromium. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH || '/usr/bin/chromium';
}

/** Where `--png` without a file writes: beside the HTML, `.png` for `.html`. */
export function pngPathFor(htmlFile: string): string {
  return htmlFile.replace(/\.html?$/i, '') + '.png';
}

/**
 * A full-page screenshot of a written report, taken by headless Chromium through playwright-core. The
 * page loads nothing from the network, so the picture is what the HTML file shows offline.
 */
export async function screenshotReport(htmlFile: string, pngFile: string): Promise<string> {
  const executablePath = chromiumPath();
  if (!fs.existsSync(executablePath)) {
    throw new EvoError(`cannot render the PNG: no Chromium at ${executablePath} (install Debian's chromium package, or set CHROMIUM_PATH to a Chromium or Chrome binary); the HTML report is written to ${htmlFile}`, 'NOT_FOUND');
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] }).catch((err: Error) => {
    throw new EvoError(`cannot render the PNG: Chromium at ${executablePath} did not start (${err.message.split('\n')[0]}); the HTML report is written to ${htmlFile}`, 'NOT_FOUND');
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(pathToFileURL(path.resolve(htmlFile)).href, { waitUntil: 'load' });
    await page.screenshot({ path: pngFile, fullPage: true }).catch((err: NodeJS.ErrnoException) => {
      throw new EvoError(`cannot write the PNG to ${pngFile}: ${err.message.split('\n')[0]}`, 'UNWRITABLE');
    });
  } finally {
    await browser.close();
  }
  return pngFile;
}

/** Rewrite the report every `everyS` seconds while the run is open, and once more when it has closed. */
export async function watchReport(workflowId: string, out: string | undefined, everyS: number, onWrite: (file: string, temporalStatus: string) => void | Promise<void>): Promise<void> {
  for (;;) {
    const { file, temporalStatus } = await writeReport(workflowId, out);
    await onWrite(file, temporalStatus);
    if (temporalStatus !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, everyS * 1000));
  }
}
