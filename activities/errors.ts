// How a failure inside an activity reaches the workflow — one rule for every activity:
// - cancellation (the workflow cancelled the step, or the worker is shutting down — what `evo down`
//   does) is thrown as Temporal's CancelledFailure, so a shutdown's attempt is marked failed and
//   retried at once on another worker (a training resumes from its checkpoint);
// - infrastructure faults (a child killed by our abort or the kernel, the machine out of memory, an
//   LLM API that is down, anything that is not one of ours) are retried;
// - the candidate's own faults are final `CandidateFailed` (the workflow records the candidate as invalid);
// - user errors (bad config, missing files, refused credentials) fail fast with their code.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { EvoError } from '../core/errors';
import { CANDIDATE_FAILED } from '../contract';

/** Maps anything an activity threw (with the activity's cancellation signal) to what Temporal should see. */
export function activityFailure(err: unknown, cancellation?: AbortSignal): unknown {
  // Whatever the cancelled work threw (a killed child, an abort error), the cancellation is what happened.
  if (cancellation?.aborted) {
    const reason: unknown = cancellation.reason;
    return reason instanceof CancelledFailure ? reason : new CancelledFailure(typeof reason === 'string' ? reason : 'CANCELLED');
  }
  if (err instanceof CancelledFailure || err instanceof ApplicationFailure) return err;
  if (err instanceof EvoError) {
    if (err.fault === 'candidate') return ApplicationFailure.nonRetryable(err.message, CANDIDATE_FAILED);
    if (err.fault === 'user') return ApplicationFailure.nonRetryable(err.message, err.code);
    return ApplicationFailure.retryable(err.message, err.code);
  }
  // Not one of ours (a network error, a full disk): the SDK turns it into a retryable failure.
  return err;
}

/** Runs an activity's body under the rule above. */
export async function underFailureRule<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw activityFailure(err, Context.current().cancellationSignal);
  }
}
