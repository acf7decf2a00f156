// Control-queue activities: data preparation, proposing and validating candidates, the fit,
// selection and the run archive. Cheap on CPU; training lives in activities/training.ts.
import * as path from 'node:path';
import { ApplicationFailure, log } from '@temporalio/activity';
import { prepareData as prepareDataLib, type DataSpec, type PreparedData } from '../lib/data/prepare';
import { baselineProgram, makeProgram, type Framework } from '../lib/program';
import { loadProgram, runDir, saveProgram, writeIterationRecord, writeSummary } from '../lib/archive';
import { OfflineCatalogueProvider } from '../lib/mutation/offline';
import { FilesProvider } from '../lib/mutation/files';
import { validateProgram } from '../lib/validate';
import { fitScalingLaw, seedFitness } from '../lib/scaling';
import { EvoError } from '../lib/errors';
import { validationSpec } from '../lib/run-settings';
import type { AttemptRecord, Candidate, IterationRecord, IterationStatus, MutationSettings, RunSettings, RunSummary, SizePoint } from '../lib/pipeline-types';

/** Errors a user must fix (bad config, missing files) fail fast instead of retrying forever. */
async function userErrorsAreFinal<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EvoError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
}

export async function prepareData(spec: DataSpec): Promise<PreparedData> {
  return userErrorsAreFinal(() => prepareDataLib(spec));
}

export interface ProposeInput {
  runId: string;
  framework: Framework;
  iteration: number;
  seed: number;
  parentHash: string | null;
  mutation: MutationSettings;
  /** Programs already tried in this run (iterations and refused attempts). */
  history: { programHash: string | null; fitness: number | null; status: string }[];
  /** Proposals made so far in this run (for the files provider). */
  proposalIndex: number;
  failedAttempts: AttemptRecord[];
}

export async function proposeCandidate(input: ProposeInput): Promise<Candidate> {
  return userErrorsAreFinal(async () => {
    if (input.iteration === 0 || input.parentHash === null) {
      const program = baselineProgram(input.framework);
      saveProgram(input.runId, program);
      return { programHash: program.hash, description: `${input.framework} baseline (causal softmax attention)`, provider: 'baseline' };
    }
    const parent = loadProgram(input.runId, input.framework, input.parentHash);
    const history = input.history
      .filter((h) => h.programHash !== null)
      .map((h) => ({ block: loadProgram(input.runId, input.framework, h.programHash!).block, fitness: h.fitness, status: h.status }));
    const request = { framework: input.framework, parentBlock: parent.block, iteration: input.iteration, seed: input.seed, history };
    const proposal =
      input.mutation.provider === 'files'
        ? await new FilesProvider(input.mutation.dir ?? '').propose(request, input.proposalIndex)
        : await new OfflineCatalogueProvider().propose(request);
    const program = makeProgram(input.framework, proposal.block);
    saveProgram(input.runId, program);
    log.info('proposed candidate', { iteration: input.iteration, programHash: program.hash, provider: proposal.provider });
    return { programHash: program.hash, description: proposal.description, provider: proposal.provider };
  });
}

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
  return userErrorsAreFinal(async () => {
    const program = loadProgram(input.runId, input.framework, input.programHash);
    const report = await validateProgram(
      program,
      validationSpec(input.settings.evaluator, input.settings.validation),
      path.join(runDir(input.runId), 'scratch', `validate-${program.hash}`),
    );
    return { ok: report.ok, reason: report.reason, blockParams: report.blockParams };
  });
}

export async function fitScaling(input: { points: SizePoint[]; fitAxis: 'non_embedding' | 'total' }): Promise<{ fit: IterationRecord['fit']; fitness: number }> {
  return userErrorsAreFinal(async () => {
    const fit = fitScalingLaw(input.points.map((p) => ({ params: input.fitAxis === 'total' ? p.totalParams : p.nonEmbeddingParams, loss: p.valLoss })));
    return { fit: { intercept: fit.intercept, slope: fit.slope, r2: fit.r2, slopeStdErr: fit.slopeStdErr }, fitness: seedFitness(fit) };
  });
}

/** Population 1, as in the seed: a candidate is accepted when it beats the best so far. */
export async function selectCandidate(input: { runId: string; record: IterationRecord; bestFitness: number | null }): Promise<IterationStatus> {
  const { record, bestFitness } = input;
  const status: IterationStatus =
    record.fitness !== null && (bestFitness === null || record.fitness > bestFitness) ? 'accepted' : 'rejected';
  writeIterationRecord(input.runId, { ...record, status });
  return status;
}

/** Record a finished iteration that never reached training (every proposal refused). */
export async function recordInvalid(input: { runId: string; record: IterationRecord }): Promise<void> {
  writeIterationRecord(input.runId, input.record);
}

export async function writeRunSummary(summary: RunSummary): Promise<void> {
  writeSummary(summary);
}
