// One error type for problems a user can act on: printed as one line, never as a stack trace.

/**
 * Whose fault an error is, which decides what a durable step does with it:
 * - `user`: bad config, missing files, refused credentials — fails fast, a person must act;
 * - `candidate`: the candidate program's own fault (refused by a check, diverged, crashed, too slow,
 *   over the sandbox's memory limit) — final for that candidate, recorded, the run goes on;
 * - `infrastructure`: the machine or the stack (a cancelled or shut-down worker, a child killed by
 *   our abort or the kernel, an LLM API that is down) — retried.
 */
export type ErrorFault = 'user' | 'candidate' | 'infrastructure';

export class EvoError extends Error {
  constructor(
    message: string,
    readonly code: string = 'EVO_ERROR',
    readonly fault: ErrorFault = 'user',
  ) {
    super(message);
    this.name = 'EvoError';
  }

  /** Only infrastructure failures are worth another attempt. */
  get retryable(): boolean {
    return this.fault === 'infrastructure';
  }
}

/** A candidate program was refused (syntax, static check, shape, causality…); the reason feeds the next mutation. */
export class ProgramRejected extends EvoError {
  constructor(message: string, readonly check: string) {
    super(message, 'PROGRAM_REJECTED', 'candidate');
    this.name = 'ProgramRejected';
  }
}

/** One line describing any thrown value, for users and for logs. */
export function oneLine(err: unknown): string {
  if (err instanceof Error) return (err.message || err.name).split('\n')[0];
  return String(err).split('\n')[0];
}
