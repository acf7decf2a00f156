// What a failed iteration hands its evolution: the LLM usage it had already paid for, in the failure's
// details, so the run's totals never lose it. Deterministic code only.
import { ApplicationFailure } from '@temporalio/workflow';
import { ITERATION_FAILED, type UsageTotals } from '../contract';

/** The patch that guards this behaviour for runs recorded before it (test/replay.test.ts). */
export const USAGE_OF_FAILED_ITERATIONS = 'usage-of-failed-iterations';

function isUsage(v: unknown): v is UsageTotals {
  return typeof v === 'object' && v !== null && typeof (v as UsageTotals).calls === 'number' && typeof (v as UsageTotals).costUsd === 'number';
}

/** The first `{ usage }` in a failure's details along its cause chain (an iteration's total, or a failed LLM call's). */
export function usageOfFailure(err: unknown): UsageTotals | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure) {
      const usage = (e.details?.[0] as { usage?: unknown } | undefined)?.usage;
      if (isUsage(usage)) return usage;
    }
  }
  return undefined;
}

/** The iteration's failure: the root cause's message, the original failure as its cause, and what it paid for. */
export function failedWithUsage(err: unknown, usage: UsageTotals): ApplicationFailure {
  let message = String(err);
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) message = e.message;
  return ApplicationFailure.create({ message, type: ITERATION_FAILED, nonRetryable: true, details: [{ usage }], cause: err instanceof Error ? err : undefined });
}
