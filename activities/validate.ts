// Validating a candidate on the control queue: static checks, then the sandboxed dynamic checks (and the
// trace, on a run that asks for the torch engine).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { loadProgram, runDir } from '../archive';
import { validateProgram } from '../validate';
import { validationSpec } from '../config/run-settings';
import type { Framework, RunSettings } from '../contract';
import { underFailureRule } from './errors';

export interface ValidateInput {
  runId: string;
  framework: Framework;
  programHash: string;
  settings: RunSettings;
}

export interface ValidationOutcome {
  ok: boolean;
  reason?: string;
  blockParams?: number;
}

export async function validateCandidate(input: ValidateInput): Promise<ValidationOutcome> {
  return underFailureRule(async () => {
    const program = loadProgram(input.runId, input.framework, input.programHash);
    const scratch = path.join(runDir(input.runId), 'scratch', `validate-${program.hash}`);
    try {
      // A run asking for torch has its candidates traced here too: one the engine cannot take is refused now,
      // not at its first training on a device worker. Under auto or tfjs a tfjs training may take it.
      const spec = { ...validationSpec(input.settings.evaluator, input.settings.validation), traceForTorch: input.settings.evaluator.engine?.engine === 'torch' };
      const report = await validateProgram(program, spec, scratch, Context.current().cancellationSignal);
      return { ok: report.ok, reason: report.reason, blockParams: report.blockParams };
    } finally {
      // The scratch holds nothing of the report; a long run must not keep one folder per candidate.
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
}
