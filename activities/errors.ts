// How a failure inside an activity reaches the workflow: errors a user must fix fail fast, the rest
// are retried by Temporal.
import { ApplicationFailure } from '@temporalio/activity';
import { EvoError } from '../core/errors';

/** Errors a user must fix (bad config, missing files) fail fast instead of retrying forever. */
export async function userErrorsAreFinal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EvoError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
}
