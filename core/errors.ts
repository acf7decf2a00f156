// One error type for problems a user can act on: printed as one line, never as a stack trace.
export class EvoError extends Error {
  constructor(message: string, readonly code: string = 'EVO_ERROR') {
    super(message);
    this.name = 'EvoError';
  }
}

/** A candidate program was refused (syntax, static check, shape, causality…); the reason feeds the next mutation. */
export class ProgramRejected extends EvoError {
  constructor(message: string, readonly check: string) {
    super(message, 'PROGRAM_REJECTED');
    this.name = 'ProgramRejected';
  }
}

/** One line describing any thrown value, for users and for logs. */
export function oneLine(err: unknown): string {
  if (err instanceof Error) return (err.message || err.name).split('\n')[0];
  return String(err).split('\n')[0];
}
