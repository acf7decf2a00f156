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

export function totalsOf(usage: LlmUsage | undefined): UsageTotals {
  const t = emptyTotals();
  for (const c of usage?.calls ?? []) {
    const m = (t.byModel[c.model] ??= { calls: 0, failedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 });
    for (const row of [t, m]) {
      row.calls += 1;
      row.failedCalls += c.ok ? 0 : 1;
      row.promptTokens += c.promptTokens;
      row.completionTokens += c.completionTokens;
      row.costUsd = roundUsd(row.costUsd + c.costUsd);
    }
  }
  return t;
}

/** Iterations' totals into a run's (or any totals into one). */
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
      const s = (sum.byModel[model] ??= { calls: 0, failedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 });
      s.calls += m.calls;
      s.failedCalls += m.failedCalls;
      s.promptTokens += m.promptTokens;
      s.completionTokens += m.completionTokens;
      s.costUsd = roundUsd(s.costUsd + m.costUsd);
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
