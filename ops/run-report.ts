// A run's progress as text: one line per iteration while it runs, the final table after, trainings in flight (lines, or bars on a terminal).
import type { IterationRecord, RunSummary } from '../contract';
import { formatTotals } from '../propose/llm/ledger';
import { fmtDuration, fmtInterval, fmtLoss, fmtSigned, progressBar, table, type TrainingBar } from '../core/output';
import type { TrainingInFlight } from './runs';

/** "+0.0123 [+0.0050, +0.0190]", or the bare value when the record has no interval (one seed, old runs). */
export function fitnessText(it: IterationRecord): string {
  if (it.fitness === null) return '—';
  return it.fitnessCi ? `${fmtSigned(it.fitness)} ${fmtInterval(it.fitnessCi)}` : fmtSigned(it.fitness);
}

/** The parent's fitness after each iteration: the last accepted one so far. */
function bestAfter(s: RunSummary, i: number): IterationRecord | undefined {
  return s.iterations.slice(0, i + 1).filter((x) => x.status === 'accepted' && x.fitness !== null).pop();
}

/** Why the iteration ended as it did (the error, or the selection's sentence), then what was proposed. */
function reasonText(it: IterationRecord): string {
  return it.error ?? (it.decision ? `${it.decision} — ${it.description}` : it.description);
}

/** `status`: what to show as the run's status when Temporal's verdict differs from the summary's (a failed run). */
export function renderSummary(s: RunSummary, status: string = s.status): string {
  const mode = s.iterations.find((it) => it.fitnessMode)?.fitnessMode;
  const rows = s.iterations.map((it, i) => {
    const best = bestAfter(s, i);
    return [
      String(it.iteration),
      it.status,
      fitnessText(it),
      it.seedSlope ? fmtSigned(it.seedSlope.fitness) : '—',
      it.points.length ? fmtLoss(it.points[it.points.length - 1].valLoss) : '—',
      best ? fmtLoss(best.fitness) : '—',
      reasonText(it).slice(0, 110),
    ];
  });
  return [
    `${s.workflowId}   ${s.framework}   profile ${s.profile}   ${status}${mode ? `   fitness ${mode} vs the baseline, 95% seed intervals` : ''}`,
    table(['iter', 'status', 'fitness [95% CI]', 'seed slope', 'loss@largest', 'best so far', 'decision — candidate'], rows),
    s.best ? `best: iteration ${s.best.iteration}, fitness ${s.best.fitness.toFixed(4)}, program ${s.best.programHash}` : 'best: none yet',
    `LLM usage: ${formatTotals(s.usage)}`,
    ...(s.reason ? [s.reason] : []),
  ].join('\n');
}

export function iterationLine(s: RunSummary, i: number): string {
  const it = s.iterations[i];
  const best = bestAfter(s, i);
  return `iteration ${String(it.iteration).padStart(3)}  ${it.status.padEnd(8)}  fitness ${fitnessText(it)}  best so far ${best ? fmtLoss(best.fitness) : '—'}  ${reasonText(it).slice(0, 120)}`;
}

/** A retried training's attempt, and the cause when it was the device's memory, without the engine's own detail: "attempt 2 after out of GPU memory at d16-L1-H2 with 2 slots". */
function retryText(t: TrainingInFlight): string {
  return `attempt ${t.attempt}${t.lastOutOfMemory ? ` after ${t.lastOutOfMemory.split(' (')[0]}` : ''}`;
}

/** Trainings in flight, one line each: size, seed, step of steps, last losses, ETA; a bar when the output is a terminal. */
export function trainingsText(trainings: TrainingInFlight[], terminal = false): string {
  if (!trainings.length) return 'trainings in flight: none';
  const lines = trainings.map((t) => {
    const iteration = /iter-(\d+)$/.exec(t.workflowId)?.[1];
    const losses = `train loss ${fmtLoss(t.trainLoss)}${t.valLoss !== undefined ? `, val ${fmtLoss(t.valLoss)}` : ''}`;
    return `  ${t.size} seed ${t.seed}  step ${t.step}/${t.steps}${terminal ? ` ${progressBar(t.step, t.steps)}` : ''}  ${losses}  ETA ${t.etaS === null ? '—' : fmtDuration(t.etaS)}  (iteration ${iteration === undefined ? '?' : Number(iteration)}${t.attempt > 1 ? `, ${retryText(t)}` : ''})`;
  });
  return ['trainings in flight:', ...lines].join('\n');
}

/** Trainings in flight as `evo start --wait` draws their bars: iteration, size and seed, then the heartbeat's step and losses. */
export function trainingBarsOf(trainings: TrainingInFlight[]): TrainingBar[] {
  return trainings.map((t) => {
    const iteration = /iter-(\d+)$/.exec(t.workflowId)?.[1];
    return {
      label: `iteration ${iteration === undefined ? '?' : Number(iteration)}  ${t.size} seed ${t.seed}${t.attempt > 1 ? ` (${retryText(t)})` : ''}`,
      step: t.step,
      steps: t.steps,
      trainLoss: t.trainLoss,
      valLoss: t.valLoss,
      etaS: t.etaS,
    };
  });
}
