// The report's charts: Vega-Lite (and, for the lineage tree, Vega) specs built from a run's
// records, rendered to SVG strings in Node, so the page needs no script and no network.
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { FitAxis, IterationRecord, RunSummary, SizePoint } from '../../contract';
import type { TrainingCurve } from '../../archive';

export interface Chart {
  /** What the chart shows; also its element id on the page. */
  id: string;
  title: string;
  /** One sentence under the chart: how to read it. */
  caption: string;
  svg: string;
}

const FONT = 'system-ui, sans-serif';
const STATUS_COLORS = { domain: ['accepted', 'rejected', 'invalid'], range: ['#2a9d4b', '#e08a1e', '#c0392b'] };

export async function toSvg(spec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function compile(spec: TopLevelSpec): vega.Spec {
  return vegaLite.compile({ ...spec, config: { font: FONT, ...(spec.config ?? {}) } } as TopLevelSpec).spec as vega.Spec;
}

/** The parent's fitness after each iteration: the last accepted one so far. */
function bestSoFar(s: RunSummary): { iteration: number; best: number }[] {
  const out: { iteration: number; best: number }[] = [];
  let best: number | null = null;
  for (const it of s.iterations) {
    if (it.status === 'accepted' && it.fitness !== null) best = it.fitness;
    if (best !== null) out.push({ iteration: it.iteration, best });
  }
  return out;
}

/** Fitness per iteration with its interval (one rule per interval), coloured by status, and the best so far as a step line. */
export function fitnessSpec(s: RunSummary): TopLevelSpec {
  const rows = s.iterations
    .filter((it) => it.fitness !== null)
    .map((it) => ({ iteration: it.iteration, fitness: it.fitness, lo: it.fitnessCi?.[0] ?? it.fitness, hi: it.fitnessCi?.[1] ?? it.fitness, status: it.status, decision: it.decision ?? '' }));
  const x = { field: 'iteration', type: 'quantitative', title: 'iteration', axis: { values: s.iterations.map((it) => it.iteration), format: 'd' } } as const;
  return {
    width: 560,
    height: 240,
    layer: [
      { data: { values: rows }, mark: { type: 'rule', strokeWidth: 2 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'fitness' }, y2: { field: 'hi' }, color: { field: 'status', type: 'nominal', scale: STATUS_COLORS } } },
      { data: { values: rows }, mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y: { field: 'fitness', type: 'quantitative' }, color: { field: 'status', type: 'nominal', scale: STATUS_COLORS }, tooltip: [{ field: 'iteration' }, { field: 'fitness' }, { field: 'decision' }] } },
      { data: { values: bestSoFar(s) }, mark: { type: 'line', interpolate: 'step-after', color: '#333', strokeDash: [4, 3] }, encoding: { x, y: { field: 'best', type: 'quantitative' } } },
    ],
  };
}

function nOf(p: SizePoint, axis: FitAxis): number {
  return axis === 'total' ? p.totalParams : p.nonEmbeddingParams;
}

/** Loss against N for one candidate: every seed's loss as a point and each fitted law as a line, the baseline beside it. */
export function lossVsNSpec(it: IterationRecord, baseline: IterationRecord | undefined, axis: FitAxis): TopLevelSpec {
  const programs = [{ label: it.iteration === 0 ? 'baseline' : `iteration ${it.iteration}`, rec: it }, ...(baseline && baseline !== it ? [{ label: 'baseline', rec: baseline }] : [])];
  const seeds = programs.flatMap(({ label, rec }) => rec.points.flatMap((p) => p.valLossBySeed.map((loss, k) => ({ program: label, N: nOf(p, axis), loss, seed: p.seeds[k], size: p.size }))));
  const ns = seeds.map((d) => d.N);
  const [lo, hi] = [Math.min(...ns), Math.max(...ns)];
  const fits = programs
    .filter(({ rec }) => rec.fit)
    .flatMap(({ label, rec }) => [lo, hi].map((N) => ({ program: label, N, loss: rec.fit!.intercept + rec.fit!.slope * Math.log(N) })));
  const color = { field: 'program', type: 'nominal', title: null, scale: { domain: programs.map((p) => p.label), range: it.iteration === 0 ? ['#999999'] : ['#1f6fb4', '#999999'] } } as const;
  const x = { field: 'N', type: 'quantitative', scale: { type: 'log' }, title: axis === 'total' ? 'parameters N (total)' : 'parameters N (non-embedding)' } as const;
  return {
    width: 260,
    height: 200,
    title: { text: `iteration ${it.iteration} (${it.status})`, fontSize: 12 },
    layer: [
      { data: { values: fits }, mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x, y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'validation loss' }, color, detail: { field: 'program' } } },
      { data: { values: seeds }, mark: { type: 'point', filled: true, size: 40, opacity: 0.8 }, encoding: { x, y: { field: 'loss', type: 'quantitative' }, color, tooltip: [{ field: 'program' }, { field: 'size' }, { field: 'seed' }, { field: 'loss' }] } },
    ],
  };
}

/** Train loss against step, one panel per size, one line per (program, seed); validation losses as points. */
export function curvesSpec(s: RunSummary, curves: TrainingCurve[]): TopLevelSpec {
  const label = new Map<string, string>();
  for (const it of s.iterations) if (it.programHash && !label.has(it.programHash)) label.set(it.programHash, it.iteration === 0 ? 'baseline' : `iteration ${it.iteration}`);
  const lines = curves.flatMap((c) => c.curve.map((p) => ({ size: c.size, program: label.get(c.programHash) ?? c.programHash, run: `${c.programHash}-${c.size}-${c.seed}`, step: p.step, loss: p.trainLoss })));
  // Panels in the profile's order of sizes (smallest first), as the records list them.
  const order = s.iterations.find((it) => it.points.length)?.points.map((p) => p.size) ?? [];
  const sizes = [...new Set([...order, ...curves.map((c) => c.size)])];
  return {
    data: { values: lines },
    facet: { field: 'size', type: 'nominal', title: null, sort: sizes },
    columns: 4,
    spec: {
      width: 200,
      height: 160,
      mark: { type: 'line', strokeWidth: 1, opacity: 0.8 },
      encoding: {
        x: { field: 'step', type: 'quantitative' },
        y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'train loss' },
        color: { field: 'program', type: 'nominal', title: null },
        detail: { field: 'run' },
      },
    },
  };
}

/** Parent → child as a tree: each iteration a node off the accepted iteration whose program it mutated (the baseline at the root). */
export function lineageNodes(s: RunSummary): { id: number; parent: number | null; label: string; status: string }[] {
  const owner = new Map<string, number>();
  return s.iterations.map((it) => {
    const parent = it.iteration === 0 ? null : (owner.get(it.parentHash ?? '') ?? 0);
    if (it.programHash && it.status === 'accepted' && !owner.has(it.programHash)) owner.set(it.programHash, it.iteration);
    return { id: it.iteration, parent, label: `${it.iteration}: ${(it.description || it.programHash || '').slice(0, 60)}`, status: it.status };
  });
}

const ROW = 22;
const INDENT = 18;

/**
 * The lineage as an indented tree, one row per iteration in order and one indent per generation,
 * each child joined to its parent by an elbow (two rules): labels never collide, however long the run.
 */
export function lineageSpec(s: RunSummary): TopLevelSpec {
  const nodes = lineageNodes(s);
  const depth = new Map<number, number>();
  const row = new Map(nodes.map((n, i) => [n.id, i]));
  const placed = nodes.map((n) => {
    const d = n.parent === null ? 0 : (depth.get(n.parent) ?? 0) + 1;
    depth.set(n.id, d);
    return { ...n, x: d * INDENT + 6, y: row.get(n.id)! * ROW + 10 };
  });
  const at = new Map(placed.map((n) => [n.id, n]));
  const edges = placed.flatMap((n) => {
    if (n.parent === null) return [];
    const p = at.get(n.parent)!;
    return [
      { x: p.x, x2: p.x, y: p.y, y2: n.y },
      { x: p.x, x2: n.x, y: n.y, y2: n.y },
    ];
  });
  const maxX = Math.max(0, ...placed.map((n) => n.x));
  const px = (field: string) => ({ field, type: 'quantitative', scale: null, axis: null }) as const;
  return {
    width: maxX + 480,
    height: placed.length * ROW,
    config: { view: { stroke: null } },
    layer: [
      { data: { values: edges }, mark: { type: 'rule', color: '#aaa' }, encoding: { x: px('x'), x2: { field: 'x2' }, y: px('y'), y2: { field: 'y2' } } },
      { data: { values: placed }, mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { x: px('x'), y: px('y'), color: { field: 'status', type: 'nominal', scale: STATUS_COLORS, title: 'status' }, tooltip: [{ field: 'label' }, { field: 'status' }] } },
      { data: { values: placed }, mark: { type: 'text', align: 'left', dx: 9, fontSize: 11 }, encoding: { x: px('x'), y: px('y'), text: { field: 'label' } } },
    ],
  };
}

/** LLM tokens per iteration as bars and the run's cumulative cost as a line, against when each iteration finished. */
export function usageSpec(s: RunSummary, closedAt: Record<number, Date>): TopLevelSpec {
  let cost = 0;
  let calls = 0;
  const rows = s.iterations.map((it) => {
    cost += it.usage.costUsd;
    calls += it.usage.calls;
    return { iteration: it.iteration, at: closedAt[it.iteration]?.toISOString() ?? null, tokens: it.usage.promptTokens + it.usage.completionTokens, calls, cost };
  });
  const timed = rows.every((r) => r.at !== null);
  const x = timed ? ({ field: 'at', type: 'temporal', title: 'iteration finished (UTC)', timeUnit: 'utcyearmonthdatehoursminutesseconds', axis: { format: '%H:%M:%S' } } as const) : ({ field: 'iteration', type: 'quantitative', title: 'iteration' } as const);
  return {
    width: 560,
    height: 200,
    data: { values: rows },
    resolve: { scale: { y: 'independent' } },
    layer: [
      { mark: { type: 'bar', width: 8, color: '#8fb3d9' }, encoding: { x, y: { field: 'tokens', type: 'quantitative', title: 'tokens in the iteration' }, tooltip: [{ field: 'iteration' }, { field: 'tokens' }, { field: 'calls', title: 'calls so far' }] } },
      { mark: { type: 'line', point: false, color: '#c0392b' }, encoding: { x, y: { field: 'cost', type: 'quantitative', title: 'cost so far (USD)', axis: { orient: 'right' } } } },
    ],
  };
}

export async function renderCharts(s: RunSummary, curves: TrainingCurve[], closedAt: Record<number, Date>, axis: FitAxis): Promise<Chart[]> {
  const charts: Chart[] = [];
  const trained = s.iterations.filter((it) => it.points.length > 0);
  if (s.iterations.some((it) => it.fitness !== null)) {
    charts.push({ id: 'fitness', title: 'Fitness per iteration', caption: 'Each candidate’s fitness against the baseline with its seed-bootstrap interval (vertical rule), coloured by the selection’s decision; the dashed step line is the best so far.', svg: await toSvg(compile(fitnessSpec(s))) });
  }
  const baseline = s.iterations.find((it) => it.iteration === 0 && it.points.length > 0);
  for (const it of trained) {
    charts.push({ id: `loss-vs-n-${it.iteration}`, title: `Loss against N, iteration ${it.iteration}`, caption: 'Every seed’s final validation loss as a point (log-N axis) and the fitted law loss = a + b·ln N as a line, the baseline in grey.', svg: await toSvg(compile(lossVsNSpec(it, baseline, axis))) });
  }
  if (curves.length > 0) {
    charts.push({ id: 'curves', title: 'Training curves per size', caption: 'Train loss against step, one line per program and seed.', svg: await toSvg(compile(curvesSpec(s, curves))) });
  }
  if (s.iterations.length > 0) {
    charts.push({ id: 'lineage', title: 'Lineage', caption: 'One row per iteration, indented under the accepted iteration whose program it mutated (its parent), coloured by status.', svg: await toSvg(compile(lineageSpec(s))) });
    charts.push({ id: 'usage', title: 'LLM calls, tokens and cost', caption: 'Tokens each iteration’s proposals used (bars) and the run’s cumulative cost (line); the offline catalogue costs nothing.', svg: await toSvg(compile(usageSpec(s, closedAt))) });
  }
  return charts;
}
