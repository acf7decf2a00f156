// `evo evaluate`: train every size of one program (the baseline or a file) and print the fit.
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvaluationResult } from '../../evaluator/evaluate';
import { ProgramRejected } from '../../core/errors';
import { fmtInt, fmtLoss, progress, table } from '../../core/output';
import type { CommandSpec } from '../spec';
import { frameworkOption, jsonOption, profileOption } from './options';

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

export const evaluate: CommandSpec = {
  name: 'evaluate',
  summary: 'train every size of a baseline or program file; print losses, the scaling-law fit, fitness',
  options: [
    frameworkOption,
    { name: 'program', type: 'string', value: '<file>', description: 'a whole framework file or just its EVOLVE-BLOCK; default: the baseline' },
    profileOption,
    jsonOption,
    { name: 'corpus', type: 'string', value: '<file|dir>', multiple: true, description: 'text files or folders of *.txt to train on instead of the default corpus' },
    { name: 'vocab-size', type: 'number', description: "BPE vocabulary size; default: the profile's" },
  ],
  async run(o) {
    const { assertFramework, baselineProgram } = await import('../../core/program');
    const { profileSettings } = await import('../../evaluator/profiles');
    const { evaluateProgram } = await import('../../evaluator/evaluate');
    const { prepareData } = await import('../../evaluator/data/prepare');
    const { checkProgram, readProgramFile } = await import('../program-file');
    const framework = assertFramework(o.framework as string);
    const settings = profileSettings(o.profile as string);
    const corpus = o.corpus as string[] | undefined;
    if (corpus?.length) settings.data.corpus = corpus.map((p) => path.resolve(p));
    if (o['vocab-size'] !== undefined) settings.data.vocabSize = o['vocab-size'] as number;
    const program = o.program ? readProgramFile(framework, o.program as string) : baselineProgram(framework);
    const report = await checkProgram(program, settings);
    if (!report.ok) throw new ProgramRejected(`program refused before training: ${report.reason}`, 'validation');
    const data = await prepareData(settings.data); // corpus problems surface here, before any progress output
    if (!o.json) progress(`evaluating ${framework} program ${program.hash} on the ${settings.profile} profile: ${settings.sizes.length} sizes × ${fmtInt(settings.training.steps)} steps, ${Math.min(os.cpus().length, settings.sizes.length)} at a time`);
    const result = await evaluateProgram(program, settings, {
      data,
      onProgress: (p) => {
        if (p.event === 'start' && p.resumedFromStep > 0) progress(`[${p.size}] resuming from checkpoint at step ${p.resumedFromStep}`);
        if (p.event === 'eval') progress(`[${p.size}] step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  val ${fmtLoss(p.valLoss)}`);
        else if (p.event === 'step') progress(`[${p.size}] step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  lr ${p.lr.toExponential(2)}`);
      },
    });
    if (o.json) {
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
  },
};
