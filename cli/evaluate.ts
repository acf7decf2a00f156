// `evo evaluate`: train every size of one program (the baseline or a file) and print the fit.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertFramework, baselineProgram, programFromText, type Program } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { evaluateProgram, type EvaluationResult } from '../evaluator/evaluate';
import { prepareData } from '../evaluator/data/prepare';
import { validateProgram } from '../validate';
import { EvoError, ProgramRejected } from '../core/errors';
import { cacheDir } from '../core/paths';
import { validationSpec } from '../config/run-settings';
import { fmtInt, fmtLoss, progress, table } from './output';

export interface EvaluateArgs {
  framework: string;
  program?: string;
  profile: string;
  json: boolean;
  /** Text files or folders of *.txt to train on instead of the default corpus. */
  corpus?: string[];
  vocabSize?: number;
}

export function readProgramFile(framework: ReturnType<typeof assertFramework>, file: string): Program {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new EvoError(`cannot read program file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'BAD_PROGRAM_FILE');
  }
  return programFromText(framework, text, file);
}

function validationScratch(program: Program): string {
  return path.join(cacheDir('validate'), `${program.hash}-${process.pid}`);
}

export interface ValidateArgs {
  framework: string;
  program: string;
  profile: string;
  json: boolean;
}

/** `evo validate`: every check on one file; exits non-zero with the reasons when refused. */
export async function validateCommand(args: ValidateArgs): Promise<void> {
  const framework = assertFramework(args.framework);
  const settings = profileSettings(args.profile);
  const program = readProgramFile(framework, args.program);
  const report = await validateProgram(program, validationSpec(settings), validationScratch(program));
  if (args.json) {
    process.stdout.write(JSON.stringify({ framework, programHash: program.hash, ...report }, null, 2) + '\n');
  } else {
    const rows = report.checks.map((c) => [c.ok ? 'pass' : 'FAIL', c.name, c.detail]);
    process.stdout.write(`${framework} program ${program.hash}${report.blockParams !== undefined ? `   block parameters ${fmtInt(report.blockParams)}` : ''}\n\n`);
    process.stdout.write(table(['', 'check', 'detail'], rows) + '\n');
  }
  if (!report.ok) throw new ProgramRejected(`refused: ${report.reason}`, 'validation');
}

export function renderEvaluation(r: EvaluationResult): string {
  const rows = r.points.map((p) => [p.size, fmtInt(p.nonEmbeddingParams), fmtInt(p.totalParams), fmtLoss(p.valLoss), fmtInt(p.steps), p.backend, p.cached ? 'cache' : `${p.wallSeconds.toFixed(1)}s`]);
  const f = r.fit;
  return [
    `framework ${r.framework}   program ${r.programHash}   profile ${r.profile}   N = ${r.fitAxis === 'total' ? 'total' : 'non-embedding'} parameters`,
    '',
    table(['size', 'non-emb params', 'total params', 'val loss', 'steps', 'backend', 'time'], rows),
    '',
    `fit      loss = ${f.intercept.toFixed(4)} ${f.slope < 0 ? '−' : '+'} ${Math.abs(f.slope).toFixed(4)}·ln N   R² ${f.r2.toFixed(4)}   slope s.e. ${f.slopeStdErr === null ? '— (2 sizes)' : f.slopeStdErr.toFixed(4)}`,
    `fitness  ${r.fitness.toFixed(4)}   (−slope, the seed's definition)`,
  ].join('\n');
}

export async function evaluateCommand(args: EvaluateArgs): Promise<void> {
  const framework = assertFramework(args.framework);
  const settings = profileSettings(args.profile);
  if (args.corpus?.length) settings.data.corpus = args.corpus.map((p) => path.resolve(p));
  if (args.vocabSize !== undefined) settings.data.vocabSize = args.vocabSize;
  const program = args.program ? readProgramFile(framework, args.program) : baselineProgram(framework);
  const report = await validateProgram(program, validationSpec(settings), validationScratch(program));
  if (!report.ok) throw new ProgramRejected(`program refused before training: ${report.reason}`, 'validation');
  const data = await prepareData(settings.data); // corpus problems surface here, before any progress output
  if (!args.json) progress(`evaluating ${framework} program ${program.hash} on the ${settings.profile} profile: ${settings.sizes.length} sizes × ${fmtInt(settings.training.steps)} steps, ${Math.min(os.cpus().length, settings.sizes.length)} at a time`);
  const result = await evaluateProgram(program, settings, {
    data,
    onProgress: (p) => {
      if (p.event === 'start' && p.resumedFromStep > 0) progress(`[${p.size}] resuming from checkpoint at step ${p.resumedFromStep}`);
      if (p.event === 'eval') progress(`[${p.size}] step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  val ${fmtLoss(p.valLoss)}`);
      else if (p.event === 'step') progress(`[${p.size}] step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  lr ${p.lr.toExponential(2)}`);
    },
  });
  if (args.json) {
    const out = {
      framework: result.framework,
      programHash: result.programHash,
      profile: result.profile,
      fitAxis: result.fitAxis,
      points: result.points.map((p) => ({ size: p.size, nonEmbeddingParams: p.nonEmbeddingParams, totalParams: p.totalParams, valLoss: p.valLoss, steps: p.steps, backend: p.backend })),
      fit: { intercept: result.fit.intercept, slope: result.fit.slope, r2: result.fit.r2, slopeStdErr: result.fit.slopeStdErr },
      fitness: result.fitness,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(renderEvaluation(result) + '\n');
  }
}
