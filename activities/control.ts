// The activities the control worker serves on the control queue (cheap on CPU, or waiting on an LLM);
// training is on the device queue (activities/train.ts).
//
// Each one heartbeats on a timer while it runs, so a control worker that dies without a word (SIGKILL, a
// lost machine) is noticed after the heartbeat timeout its workflow sets (workflows/activities.ts), and
// its step is retried on the next control worker then, not at the 30-minute start-to-close timeout.
import { Context } from '@temporalio/activity';
import * as data from './data';
import * as propose from './propose';
import * as validate from './validate';
import * as score from './score';
import * as archive from './archive';

export * from './data';
export * from './propose';
export * from './validate';
export * from './score';
export * from './archive';

/** How often a control activity beats; the SDK throttles what it sends to the server to the timeout's pace. */
const BEAT_MS = 1000;

/** The activity, heartbeating while it runs (called outside an activity, it just runs). */
function heartbeating<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    let ctx: Context;
    try {
      ctx = Context.current();
    } catch {
      return fn(...args);
    }
    ctx.heartbeat();
    const timer = setInterval(() => ctx.heartbeat(), BEAT_MS);
    try {
      return await fn(...args);
    } finally {
      clearInterval(timer);
    }
  };
}

// Local exports win over the re-exports above: these are what workers register.
export const prepareData = heartbeating(data.prepareData);
export const proposeCandidate = heartbeating(propose.proposeCandidate);
export const validateCandidate = heartbeating(validate.validateCandidate);
export const scoreCandidate = heartbeating(score.scoreCandidate);
export const scoreFirstSeeds = heartbeating(score.scoreFirstSeeds);
export const recordIteration = heartbeating(archive.recordIteration);
export const writeRunSummary = heartbeating(archive.writeRunSummary);
