// `npm run bench:fitness`: which fitness mode tells known-worse attention from the baseline best?
// Trains (or reads from the cache) the baseline and three controls at every size and seed of a
// profile, then prints, per mode, each control's fitness with its 95% seed-bootstrap interval and its
// separation: |Δ| / interval half-width (higher: the mode sees the difference through the noise).
// Usage: node dist/scripts/bench-fitness.js [--profile smoke] [--seeds 5] [--framework coefficient_dynamics]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { baselineProgram, makeProgram, extractBlock, assertFramework } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { evaluateProgram, type EvaluationResult } from '../evaluator/evaluate';
import { prepareData } from '../evaluator/data/prepare';
import { parseSeeds } from '../config/run-settings';
import { decide, FITNESS_MODES, type SeededPoint } from '../score/fitness';
import { counted, exitWithError, fmtInterval, fmtLoss, fmtSigned, progress, table } from '../core/output';
import { repoRoot } from '../core/paths';
import type { SizePoint } from '../contract';

/** Known answers: the first two are worse than softmax, the last is softmax computed differently. */
const CONTROLS = [
  { file: 'causal-mean.ts', label: 'causal mean (known worse)' },
  { file: 'self-only.ts', label: 'no mixing (known worse)' },
  { file: 'baseline-split-scale.ts', label: 'baseline, q·k scaled apart (same function)' },
];

const seeded = (points: SizePoint[]): SeededPoint[] => points.map((p) => ({ size: p.size, params: p.nonEmbeddingParams, lossBySeed: p.valLossBySeed }));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { profile: { type: 'string', default: 'smoke' }, seeds: { type: 'string' }, framework: { type: 'string', default: 'coefficient_dynamics' } } });
  const framework = assertFramework(values.framework!);
  const settings = profileSettings(values.profile!);
  if (values.seeds) settings.seeds = parseSeeds(values.seeds, settings.seeds[0]);
  const data = await prepareData(settings.data);
  const started = Date.now();
  const results: { label: string; r: EvaluationResult }[] = [];
  for (const c of CONTROLS) {
    const text = fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'controls', c.file), 'utf8');
    const block = text.includes('EVOLVE-BLOCK-START') ? extractBlock(text, c.file) : text;
    progress(`training ${c.label} (and the baseline, once) on ${settings.profile}: ${counted(settings.sizes.length, 'size')} × ${counted(settings.seeds.length, 'seed')} …`);
    results.push({ label: c.label, r: await evaluateProgram(makeProgram(framework, block), settings, { data }) });
  }
  const base = seeded(results[0].r.baseline.points);
  process.stdout.write(`${framework}, profile ${settings.profile}, seeds ${settings.seeds.join(',')}, baseline ${baselineProgram(framework).hash}; ${((Date.now() - started) / 1000).toFixed(0)} s (cached trainings are reused)\n\n`);
  process.stdout.write(
    table(
      ['size', 'baseline', ...results.map((x) => x.label.split(' (')[0])],
      results[0].r.baseline.points.map((b, i) => [b.size, fmtLoss(b.valLoss), ...results.map((x) => fmtLoss(x.r.points[i].valLoss))]),
    ) + '\n\n',
  );
  const rows: string[][] = [];
  for (const mode of FITNESS_MODES) {
    for (const { label, r } of results) {
      const cand = seeded(r.points);
      // Candidate − baseline in each mode (for the relative modes this is the fitness itself).
      const d = decide(mode, cand, base, base);
      const f = d.delta;
      const half = (f.hi - f.lo) / 2;
      rows.push([mode, label, `${fmtSigned(f.value)} ${fmtInterval([f.lo, f.hi])}`, half > 0 ? (Math.abs(f.value) / half).toFixed(1) : '∞', d.accept ? 'accepted' : 'rejected']);
    }
  }
  process.stdout.write(table(['mode', 'program', 'Δ vs baseline [95% CI]', 'separation', 'over the baseline'], rows) + '\n');
}

main().catch(exitWithError);
