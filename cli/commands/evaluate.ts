// `evo evaluate`: train one program (the baseline or a file) and its baseline at every size with every
// seed, and print per-size losses, the paired difference, the fitness with its interval and the fit.
import * as os from 'node:os';
import * as path from 'node:path';
import { dataUse, MAX_PASSES_WITHOUT_WARNING, type EvaluationResult } from '../../evaluator/evaluate';
import { EvoError, ProgramRejected } from '../../core/errors';
import { DEFAULT_FITNESS } from '../../score/select';
import { FITNESS_MODES } from '../../score/fitness';
import { parseSeeds } from '../../config/run-settings';
import type { FitnessMode, SizePoint } from '../../contract';
import { counted, fmtInt, fmtInterval, fmtLoss, fmtSigned, LiveBlock, progress, table, TrainingBoard, trainingBars } from '../../core/output';
import type { CommandSpec } from '../spec';
import { frameworkOption, jsonOption, profileOption } from './options';

const sd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

const MODE_WORDS: Record<FitnessMode, string> = {
  loss_delta: 'baseline loss − this loss in nats, sizes weighted by ln N',
  param_multiplier: 'ln k: the baseline needs k× the parameters for this loss',
  extrapolated: 'fitted loss gap at 4× the largest size',
  slope: "−slope, the seed's definition",
};

export function renderEvaluation(r: EvaluationResult): string {
  const { score } = r;
  const rows = r.points.map((p, i) => {
    const b = r.baseline.points[i];
    const delta = b.valLossBySeed.map((x, k) => x - p.valLossBySeed[k]);
    const runs = r.runs.filter((x) => x.size === p.size);
    const time = runs.every((x) => x.cached) ? 'cache' : `${runs.reduce((a, x) => a + (x.cached ? 0 : x.wallSeconds), 0).toFixed(1)}s`;
    return [
      p.size,
      fmtInt(p.nonEmbeddingParams),
      fmtInt(p.totalParams),
      (r.data.tokensPerTraining / p.nonEmbeddingParams).toFixed(0),
      `${fmtLoss(p.valLoss)} ± ${fmtLoss(sd(p.valLossBySeed))}`,
      fmtLoss(b.valLoss),
      `${fmtSigned(delta.reduce((a, x) => a + x, 0) / delta.length)} ± ${fmtLoss(sd(delta))}`,
      p.msPerStep.toFixed(1),
      p.backend,
      time,
    ];
  });
  const f = score.fit;
  const seeds = r.seeds.length > 3 ? `${r.seeds[0]}…${r.seeds[r.seeds.length - 1]}` : r.seeds.join(', ');
  const lines = [
    `framework ${r.framework}   program ${r.programHash}   baseline ${r.baseline.programHash}   profile ${r.profile}`,
    `seeds ${seeds} (${r.seeds.length})   N = ${r.fitAxis === 'total' ? 'total' : 'non-embedding'} parameters   mean ± sd over seeds; Δ = baseline − this, paired by seed`,
    '',
    table(['size', 'non-emb params', 'total params', 'tokens/param', 'val loss', 'baseline', 'Δ vs baseline', 'ms/step', 'backend', 'time'], rows),
    '',
    `fit        loss = ${f.intercept.toFixed(4)} ${f.slope < 0 ? '−' : '+'} ${Math.abs(f.slope).toFixed(4)}·ln N   R² ${f.r2.toFixed(4)}   slope s.e. ${f.slopeStdErr === null ? '— (2 sizes)' : f.slopeStdErr.toFixed(4)}`,
    `fitness    ${fmtSigned(score.fitness)} ${fmtInterval(score.fitnessCi)}   ${score.fitnessMode} (${MODE_WORDS[score.fitnessMode]}); 95% seed bootstrap`,
    `seed slope ${fmtSigned(score.seedSlope.fitness)} ${fmtInterval(score.seedSlope.ci)}   −slope, the seed's fitness, for comparison`,
    `cost       ${score.cost.timeRatio.toFixed(2)}× the baseline's time per step, ${score.cost.memoryRatio.toFixed(2)}× its tensor memory (largest size; not part of the fitness)`,
    `data       ${fmtInt(r.data.tokensPerTraining)} tokens per training = ${r.data.passes.toFixed(1)} passes over the ${fmtInt(r.data.trainTokens)}-token training split`,
  ];
  return lines.join('\n');
}

export function fitnessMode(text: string): FitnessMode {
  if ((FITNESS_MODES as readonly string[]).includes(text)) return text as FitnessMode;
  throw new EvoError(`--fitness must be one of ${FITNESS_MODES.join(', ')}; got "${text}"`, 'USAGE');
}

export const evaluate: CommandSpec = {
  name: 'evaluate',
  summary: 'train a program and its baseline at every size and seed; print losses, the paired fitness with its interval',
  options: [
    frameworkOption,
    { name: 'program', type: 'string', value: '<file>', description: 'a whole framework file or just its EVOLVE-BLOCK; default: the baseline' },
    profileOption,
    jsonOption,
    { name: 'corpus', type: 'string', value: '<file|dir>', multiple: true, description: 'text or .jsonl files, folders of *.txt/*.jsonl, a nanoGPT folder (train.bin, val.bin) or a .bin file to train on instead of the default corpus' },
    { name: 'vocab-size', type: 'number', description: "BPE vocabulary size, or for .bin data any size above its largest token id (50257 for GPT-2's); default: the profile's" },
    { name: 'seeds', type: 'string', value: '<count|list>', description: "training seeds: a count (counting up from the profile's first) or a list like 1,2,3; default: the profile's" },
    { name: 'fitness', type: 'string', value: FITNESS_MODES.join('|'), description: `fitness mode, relative to the baseline trained with the same seeds (default: ${DEFAULT_FITNESS.mode})` },
    { name: 'engine', type: 'string', value: 'auto|tfjs|torch', description: 'the engine every training runs on; wins over EVOSCALE_ENGINE (default: EVOSCALE_ENGINE, else auto: torch where it imports and sees a CUDA device, or where tfjs-wasm cannot hold the shape of a size; tfjs otherwise)' },
  ],
  async run(o) {
    const { assertFramework, baselineProgram } = await import('../../core/program');
    const { profileSettings } = await import('../../evaluator/profiles');
    const { evaluateProgram } = await import('../../evaluator/evaluate');
    const { prepareData } = await import('../../evaluator/data/prepare');
    const { checkProgram, readProgramFile } = await import('../program-file');
    const { parseEngineChoice, resolveEngine } = await import('../../engine/run');
    const framework = assertFramework(o.framework as string);
    // The flag reaches the trainings as their EVOSCALE_ENGINE: on the command line it is the most specific choice.
    // A torch asked for and not importable is one line now, before any validation or data preparation.
    const engine = o.engine === undefined ? undefined : parseEngineChoice(o.engine as string);
    if (engine) await resolveEngine(engine, {});
    const settings = profileSettings(o.profile as string);
    const corpus = o.corpus as string[] | undefined;
    if (corpus?.length) settings.data.corpus = corpus.map((p) => path.resolve(p));
    if (o['vocab-size'] !== undefined) settings.data.vocabSize = o['vocab-size'] as number;
    if (o.seeds !== undefined) settings.seeds = parseSeeds(o.seeds as string, settings.seeds[0]);
    const fitness = { ...DEFAULT_FITNESS, mode: fitnessMode((o.fitness as string | undefined) ?? DEFAULT_FITNESS.mode) };
    const program = o.program ? readProgramFile(framework, o.program as string) : baselineProgram(framework);
    const report = await checkProgram(program, settings);
    if (!report.ok) throw new ProgramRejected(`program refused before training: ${report.reason}`, 'validation');
    const data = await prepareData(settings.data); // corpus problems surface here, before any progress output
    const use = dataUse(settings, data);
    if (use.passes > MAX_PASSES_WITHOUT_WARNING) progress(`warning: each training reads its ${fmtInt(use.trainTokens)}-token training split ${use.passes.toFixed(0)} times: losses then measure memorising this corpus more than the architecture; train on more data (--corpus)`);
    const baselineHash = baselineProgram(framework).hash;
    if (!o.json) {
      const programs = program.hash === baselineHash ? 'the baseline' : 'the program and the baseline';
      progress(`evaluating ${framework} program ${program.hash} on the ${settings.profile} profile: ${programs} × ${counted(settings.sizes.length, 'size')} × ${counted(settings.seeds.length, 'seed')} × ${fmtInt(settings.training.steps)} steps, ${os.cpus().length} at a time (cached trainings are reused)`);
    }
    const bars = process.stderr.isTTY ? new LiveBlock(process.stderr) : null;
    const board = new TrainingBoard();
    let drawnAt = 0;
    const draw = (now: number) => {
      drawnAt = now;
      bars!.show(trainingBars(board.bars(now), bars!.columns, bars!.rows));
    };
    const result = await evaluateProgram(program, settings, {
      data,
      fitness,
      env: engine ? { EVOSCALE_ENGINE: engine } : undefined,
      onProgress: (p) => {
        // Which program, where the program and the baseline train side by side (padded: bars align).
        const who = program.hash === baselineHash ? '' : p.program === baselineHash ? 'baseline ' : 'program  ';
        const tag = `[${who.replace(/ +$/, ' ')}${p.size} seed ${p.seed}]`;
        const say = (line: string) => (bars ? bars.above(() => progress(line)) : progress(line));
        if (p.event === 'warning') say(`${tag} warning: ${p.message}`);
        if (p.event === 'start' && p.resumedFromStep > 0) say(`${tag} resuming from checkpoint at step ${p.resumedFromStep}`);
        if (bars) {
          // On a terminal: one bar per training, redrawn in place at most ten times a second (and at every start and end).
          if (p.event === 'warning') return;
          const now = Date.now();
          board.update(`${who}${p.size} seed ${p.seed}`, p, now);
          if (p.event === 'start' || p.step >= p.steps || now - drawnAt >= 100) draw(now);
        } else if (p.event === 'eval') progress(`${tag} step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  val ${fmtLoss(p.valLoss)}`);
        else if (p.event === 'step') progress(`${tag} step ${p.step}/${p.steps}  train ${fmtLoss(p.trainLoss)}  lr ${p.lr.toExponential(2)}`);
      },
    });
    if (bars) {
      draw(Date.now());
      bars.end();
    }
    if (o.json) {
      const { score } = result;
      const point = (p: SizePoint) => ({
        size: p.size,
        nonEmbeddingParams: p.nonEmbeddingParams,
        totalParams: p.totalParams,
        valLoss: p.valLoss,
        valLossBySeed: p.valLossBySeed,
        steps: p.steps,
        backend: p.backend,
        msPerStep: p.msPerStep,
        peakBytes: p.peakBytes,
        ...(p.graph ? { graph: p.graph } : {}),
      });
      const out = {
        framework: result.framework,
        programHash: result.programHash,
        profile: result.profile,
        fitAxis: result.fitAxis,
        seeds: result.seeds,
        points: result.points.map(point),
        fit: score.fit,
        fitness: score.fitness,
        fitnessMode: score.fitnessMode,
        fitnessCi: score.fitnessCi,
        seedSlope: score.seedSlope,
        cost: score.cost,
        baseline: { programHash: result.baseline.programHash, points: result.baseline.points.map(point) },
        data: result.data,
      };
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      process.stdout.write(renderEvaluation(result) + '\n');
    }
  },
};
