// A program given on the command line: read it, and run every validation check on it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { programFromText, type Program } from '../core/program';
import type { EvaluatorSettings, Framework } from '../contract';
import { validateProgram } from '../validate';
import { EvoError } from '../core/errors';
import { cacheDir } from '../core/paths';
import { validationSpec } from '../config/run-settings';

export function readProgramFile(framework: Framework, file: string): Program {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new EvoError(`cannot read program file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'BAD_PROGRAM_FILE');
  }
  return programFromText(framework, text, file);
}

/** Every static and sandboxed check on one program, under the profile's validation settings. */
export async function checkProgram(program: Program, settings: EvaluatorSettings) {
  const scratch = path.join(cacheDir('validate'), `${program.hash}-${process.pid}`);
  try {
    return await validateProgram(program, validationSpec(settings), scratch);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
