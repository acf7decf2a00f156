// The token and cost ledger: per-call usage adds up into a proposal's, an iteration's and a run's
// totals (small JSON for workflow state and summary.json), and the run's spend is held to its budget.
import type { LlmCall, LlmUsage } from '../provider';
import type { UsageTotals } from '../../contract';
export type { UsageTotals };

/** Costs are kept to a billionth of a dollar so sums of many small floats stay exact enough to compare. */
function roundUsd(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

export function usageFromCalls(calls: LlmCall[]): LlmUsage {
  return {
    calls,
    promptTokens: calls.reduce((n, c) => n + c.promptTokens, 0),
    completionTokens: calls.reduce((n, c) => n + c.completionTokens, 0),
    costUsd: roundUsd(calls.reduce((n, c) => n + c.costUsd, 0)),
  };
}

/** Several proposals' usage as one (e.g. every attempt of an iteration). */
export function mergeUsage(...usages: (LlmUsage | undefined)[]): LlmUsage {
  return usageFromCalls(usages.flatMap((u) => u?.calls ?? []));
}

export function emptyTotals(): UsageTotals {
  return { calls: 0, failedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, byModel: {} };
}

type Row = Omit<UsageTotals, 'byModel' | 'replies'>;

function rowOf(t: UsageTotals, model: string): Row {
  return (t.byModel[model] ??= { calls: 0, failedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 });
}

/** Adds (sign 1) or takes back (sign −1) one call's share in the totals and its model's row. */
function count(t: UsageTotals, c: { model: string; ok: boolean; promptTokens: number; completionTokens: number; costUsd: number }, sign: 1 | -1 = 1): void {
  for (const row of [t, rowOf(t, c.model)]) {
    row.calls += sign;
    row.failedCalls += c.ok ? 0 : sign;
    row.promptTokens += sign * c.promptTokens;
    row.completionTokens += sign * c.completionTokens;
    row.costUsd = roundUsd(row.costUsd + sign * c.costUsd);
  }
}

/**
 * A proposal's calls as totals. A call whose reply the reply store kept carries its key into `replies`,
 * so that the same reply reaching the run's totals twice (a retried step, an iteration run again) is
 * counted once; a reused reply counts like the call that fetched it — it was paid once, and this is that once.
 */
export function totalsOf(usage: LlmUsage | undefined): UsageTotals {
  const t = emptyTotals();
  for (const c of usage?.calls ?? []) {
    if (c.ok && c.replyKey) {
      if (t.replies?.[c.replyKey]) continue;
      (t.replies ??= {})[c.replyKey] = { model: c.model, promptTokens: c.promptTokens, completionTokens: c.completionTokens, costUsd: c.costUsd };
    }
    count(t, c);
  }
  return t;
}

/** Iterations' totals into a run's (or any totals into one); a stored reply counted in more than one of them counts once. */
export function addTotals(...totals: (UsageTotals | undefined)[]): UsageTotals {
  const sum = emptyTotals();
  for (const t of totals) {
    if (!t) continue;
    sum.calls += t.calls;
    sum.failedCalls += t.failedCalls;
    sum.promptTokens += t.promptTokens;
    sum.completionTokens += t.completionTokens;
    sum.costUsd = roundUsd(sum.costUsd + t.costUsd);
    for (const [model, m] of Object.entries(t.byModel)) {
      const s = rowOf(sum, model);
      s.calls += m.calls;
      s.failedCalls += m.failedCalls;
      s.promptTokens += m.promptTokens;
      s.completionTokens += m.completionTokens;
      s.costUsd = roundUsd(s.costUsd + m.costUsd);
    }
    for (const [key, charge] of Object.entries(t.replies ?? {})) {
      if (sum.replies?.[key]) count(sum, { ...charge, ok: true }, -1);
      else (sum.replies ??= {})[key] = charge;
    }
  }
  return sum;
}

/** True once the run has spent its budget: no new mutation may be requested. No budget: never. */
export function budgetExceeded(runUsage: { costUsd: number }, budgetUsd: number | null | undefined): boolean {
  return budgetUsd !== null && budgetUsd !== undefined && runUsage.costUsd >= budgetUsd;
}

/** One line saying that the budget stopped mutation, for the run's record and the CLI. */
export function budgetMessage(runUsage: { costUsd: number }, budgetUsd: number): string {
  return `LLM budget spent: $${runUsage.costUsd.toFixed(4)} of $${budgetUsd.toFixed(2)} (llm.budget_usd); no new mutations are requested`;
}

/** "12 calls (1 failed), 45210 prompt + 9880 completion tokens, $0.1543" for `evo status`. */
export function formatTotals(t: UsageTotals): string {
  const failed = t.failedCalls ? ` (${t.failedCalls} failed)` : '';
  return `${t.calls} LLM call${t.calls === 1 ? '' : 's'}${failed}, ${t.promptTokens} prompt + ${t.completionTokens} completion tokens, $${t.costUsd.toFixed(4)}`;
}
