// The report as one self-contained HTML page: inline CSS and SVG, no script, no external resource.
import { createTwoFilesPatch } from 'diff';
import type { IterationRecord } from '../../contract';
import { fmtInterval, fmtLoss, fmtSigned } from '../../core/output';
import { formatTotals } from '../../propose/llm/ledger';
import { fitnessText } from '../run-report';
import type { RunSnapshot } from '../runs';
import type { Chart } from './charts';

export interface ReportPage {
  snapshot: RunSnapshot;
  charts: Chart[];
  /** The best program's source and the baseline's, for the diff; null when the archive lacks either. */
  best: { iteration: number; source: string } | null;
  baseline: { source: string } | null;
  /** Web UI link of a workflow, when the UI's address is known. */
  uiUrl: (workflowId: string) => string | undefined;
  iterationWorkflowId: (iteration: number) => string;
  generatedAt: Date;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function link(text: string, href: string | undefined): string {
  return href ? `<a href="${esc(href)}">${esc(text)}</a>` : esc(text);
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
h1 { font-size: 20px; margin-bottom: 4px; } h2 { font-size: 16px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { color: #555; font-size: 12px; max-width: 620px; }
table { border-collapse: collapse; font-size: 12px; } td, th { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.accepted { color: #2a9d4b; } .rejected { color: #b86e0a; } .invalid { color: #c0392b; }
pre.diff { background: #fafafa; border: 1px solid #eee; padding: 8px; overflow-x: auto; font-size: 12px; }
pre.diff .add { background: #e6ffec; display: block; } pre.diff .del { background: #ffebe9; display: block; } pre.diff .hunk { color: #6f42c1; display: block; }
`;

function figure(c: Chart): string {
  return `<figure class="chart" id="${esc(c.id)}" data-chart="${esc(c.id)}"><h3>${esc(c.title)}</h3>${c.svg}<figcaption>${esc(c.caption)}</figcaption></figure>`;
}

function diffHtml(p: ReportPage): string {
  if (!p.best) return '<p>No candidate has been accepted over the baseline yet.</p>';
  if (!p.baseline) return '<p>The archive does not hold both programs.</p>';
  const patch = createTwoFilesPatch('baseline', `iteration ${p.best.iteration}`, p.baseline.source, p.best.source, undefined, undefined, { context: 3 });
  const lines = patch.split('\n').slice(1); // the "===" rule says nothing here
  const cls = (l: string) => (l.startsWith('@@') ? 'hunk' : l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : '');
  return `<pre class="diff">${lines.map((l) => (cls(l) ? `<span class="${cls(l)}">${esc(l)}</span>` : `${esc(l)}\n`)).join('')}</pre>`;
}

function candidateRow(p: ReportPage, it: IterationRecord): string {
  const id = p.iterationWorkflowId(it.iteration);
  const reason = it.error ?? it.decision ?? '';
  return `<tr><td class="num">${link(String(it.iteration), p.uiUrl(id))}</td><td class="${it.status}">${it.status}</td><td class="num">${esc(fitnessText(it))}</td><td class="num">${it.vsParent ? esc(`${fmtSigned(it.vsParent.value)} ${fmtInterval([it.vsParent.lo, it.vsParent.hi])}`) : '—'}</td><td class="num">${esc(it.points.length ? fmtLoss(it.points[it.points.length - 1].valLoss) : '—')}</td><td>${esc(reason)}</td><td>${esc(it.description)}</td><td><code>${esc(it.programHash ?? '—')}</code></td><td class="num">${it.failedAttempts.length}</td></tr>`;
}

function inFlightHtml(p: ReportPage): string {
  const t = p.snapshot.trainings;
  if (!t.length) return '';
  const rows = t.map((x) => `<tr><td>${esc(x.workflowId)}</td><td>${esc(x.size)}</td><td class="num">${x.seed}</td><td class="num">${x.step}/${x.steps}</td><td class="num">${fmtLoss(x.trainLoss)}</td><td class="num">${x.etaS === null ? '—' : `${Math.round(x.etaS)} s`}</td></tr>`);
  return `<h2>Trainings in flight</h2><table><tr><th>iteration</th><th>size</th><th>seed</th><th>step</th><th>train loss</th><th>ETA</th></tr>${rows.join('')}</table>`;
}

export function reportHtml(p: ReportPage): string {
  const s = p.snapshot.summary;
  const when = (d: Date | null) => (d ? d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '—');
  const runLink = link(s.workflowId, p.uiUrl(s.workflowId));
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`evoscale report — ${s.workflowId}`)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(s.framework)} — ${runLink}</h1>
<p class="meta">profile ${esc(s.profile)} · run ${esc(s.status)} · Temporal ${esc(p.snapshot.temporalStatus)} · started ${when(p.snapshot.startTime)} · closed ${when(p.snapshot.closeTime)} · ${s.iterations.length} iterations recorded · report written ${when(p.generatedAt)}</p>
<p class="meta">best: ${s.best ? esc(`iteration ${s.best.iteration}, fitness ${fmtSigned(s.best.fitness)}, program ${s.best.programHash}`) : 'none yet'} · LLM usage: ${esc(formatTotals(s.usage))}${s.reason ? ` · ${esc(s.reason)}` : ''}</p>
${inFlightHtml(p)}
<h2>Charts</h2>
<div class="charts">${p.charts.map(figure).join('\n')}</div>
<h2>Best program against the baseline</h2>
${diffHtml(p)}
<h2>Every candidate</h2>
<table><tr><th>iter</th><th>status</th><th>fitness [CI]</th><th>vs parent</th><th>loss@largest</th><th>decision / reason</th><th>candidate</th><th>program</th><th>refused attempts</th></tr>
${s.iterations.map((it) => candidateRow(p, it)).join('\n')}</table>
</body></html>
`;
}
