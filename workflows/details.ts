// What the Web UI shows for a run and its iterations: each iteration's fixed summary (set when it
// starts) and the live "current details" of both workflows. Text only; deterministic code.
import type { IterationInput, IterationRecord, RunState } from '../contract';
import { counted, fmtInterval, fmtSigned } from '../core/output';

function shortHash(hash: string | null): string {
  return hash ? hash.slice(0, 8) : '—';
}

/** The child's static summary: what it sets out to do (its result is not known when it starts). */
export function iterationSummary(input: IterationInput): string {
  if (input.iteration === 0) return `iteration 0: train the ${input.settings.framework} baseline`;
  return `iteration ${input.iteration}: mutate ${shortHash(input.parentHash)}, train ${counted(input.settings.evaluator.sizes.length, 'size')} × ${counted(input.settings.evaluator.seeds.length, 'seed')}`;
}

/** How an iteration ended, e.g. "iteration 3: cd-alibi — accepted, Δ +0.0200 [+0.0100, +0.0300]". */
export function iterationOutcome(r: IterationRecord): string {
  const name = r.description || shortHash(r.programHash);
  const delta = r.vsParent ? `, Δ ${fmtSigned(r.vsParent.value)} ${fmtInterval([r.vsParent.lo, r.vsParent.hi])}` : r.fitness !== null ? `, fitness ${fmtSigned(r.fitness)}` : '';
  const why = r.error ? ` (${r.error.slice(0, 160)})` : '';
  return `iteration ${r.iteration}: ${name} — ${r.status}${delta}${why}`;
}

/** The evolution's current details: where it is and the live best. */
export function runDetails(s: RunState, iterations: number, now: string): string {
  const best = s.best ? `best: iteration ${s.best.iteration}, fitness ${fmtSigned(s.best.fitness)}, program ${shortHash(s.best.programHash)}` : 'best: none yet';
  return [`${s.status}: ${now}; plan: the baseline + ${iterations} iterations`, best, ...(s.lastOutcome ? [`last: ${s.lastOutcome}`] : []), ...(s.reason ? [s.reason] : [])].join('\n');
}
