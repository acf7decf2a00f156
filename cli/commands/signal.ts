// `evo pause|resume|stop <workflowId>`: the evolution workflow's signals.
import type { CommandSpec } from '../spec';

function signalCommand(signal: 'pause' | 'resume' | 'stop', summary: string): CommandSpec {
  return {
    name: signal,
    summary,
    options: [],
    positionals: [{ name: 'workflowId', required: true, description: 'the run, as `evo start` and `evo status` print it' }],
    async run(_o, [workflowId]) {
      const { signalRun } = await import('../../ops/runs');
      await signalRun(workflowId, signal);
      process.stdout.write(`sent ${signal} to ${workflowId}\n`);
    },
  };
}

export const pause = signalCommand('pause', 'pause a run before its next iteration');
export const resume = signalCommand('resume', 'resume a paused run');
export const stop = signalCommand('stop', 'stop a run after its current iteration');
