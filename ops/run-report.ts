// A run's progress as text: one line per iteration while it runs, the final table after.
import type { RunSummary } from '../contract';
import { formatTotals } from '../propose/llm/ledger';
import { fmtLoss, table } from '../core/output';

export function renderSummary(s: RunSummary): string {
  const rows = s.iterations.map((it) => {
    const bestSoFar = Math.max(...s.iterations.filter((x) => x.iteration <= it.iteration && x.status === 'accepted' && x.fitness !== null).map((x) => x.fitness!));
    return [
      String(it.iteration),
      it.status,
      fmtLoss(it.fitness),
      it.fit ? fmtLoss(it.fit.r2, 3) : '—',
      it.points.length ? fmtLoss(it.points[it.points.length - 1].valLoss) : '—',
      Number.isFinite(bestSoFar) ? fmtLoss(bestSoFar) : '—',
      (it.error ?? it.description).slice(0, 70),
    ];
  });
  return [
    `${s.workflowId}   ${s.framework}   profile ${s.profile}   ${s.status}`,
    table(['iter', 'status', 'fitness', 'R²', 'loss@largest', 'best so far', 'candidate'], rows),
    s.best ? `best: iteration ${s.best.iteration}, fitness ${s.best.fitness.toFixed(4)}, program ${s.best.programHash}` : 'best: none yet',
    `LLM usage: ${formatTotals(s.usage)}`,
    ...(s.reason ? [s.reason] : []),
  ].join('\n');
}

export function iterationLine(s: RunSummary, i: number): string {
  const it = s.iterations[i];
  const best = s.iterations.slice(0, i + 1).filter((x) => x.status === 'accepted' && x.fitness !== null).map((x) => x.fitness!);
  return `iteration ${String(it.iteration).padStart(3)}  ${it.status.padEnd(8)}  fitness ${fmtLoss(it.fitness).padStart(8)}  best so far ${best.length ? fmtLoss(Math.max(...best)) : '—'}  ${(it.error ?? it.description).slice(0, 80)}`;
}
