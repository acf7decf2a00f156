// Proposing a candidate: the baseline at iteration 0, then the run's mutation provider, with the
// archive's context (parent score, best, earlier attempts and their errors, inspirations).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure, log } from '@temporalio/activity';
import { baselineProgram, makeProgram, type Framework } from '../core/program';
import { loadProgram, runDir, saveProgram } from '../archive';
import { chooseProvider, type AttemptFeedback, type MutationRequest } from '../propose';
import { ReplyRefused } from '../propose/llm/reply';
import { LlmError } from '../propose/llm/openai';
import { emptyTotals, totalsOf } from '../propose/llm/ledger';
import { ReplyStore } from '../propose/llm/replies';
import type { AttemptRecord, Candidate, IterationRecord, RunSettings } from '../contract';
import { underFailureRule } from './errors';

export interface ProposeInput {
  runId: string;
  settings: RunSettings;
  iteration: number;
  parentHash: string | null;
  /** Programs already tried in this run (iterations and refused attempts). */
  history: { programHash: string | null; fitness: number | null; status: string }[];
  /** Proposals made so far in this run (for the files provider). */
  proposalIndex: number;
  /** This iteration's refused attempts so far, for the failure side-channel. */
  failedAttempts: AttemptRecord[];
}

const noticesLogged = new Set<string>();

function readIterationRecords(runId: string): IterationRecord[] {
  const dir = path.join(runDir(runId), 'iterations');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /^iter-\d+\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as IterationRecord);
}

function feedbackOf(rec: IterationRecord): AttemptFeedback[] {
  const out: AttemptFeedback[] = rec.failedAttempts.map((a, i) => ({
    iteration: rec.iteration,
    attempt: i + 1,
    outcome: a.kind,
    description: a.description,
    error: a.error,
  }));
  const refusedAll = rec.status === 'invalid' && rec.points.length === 0;
  if (!refusedAll) {
    out.push({
      iteration: rec.iteration,
      attempt: rec.failedAttempts.length + 1,
      outcome: rec.status === 'invalid' ? 'validation-failed' : rec.status,
      description: rec.description,
      error: rec.error,
      fitness: rec.fitness,
    });
  }
  return out;
}

/**
 * What an LLM needs besides the parent: its score, the best so far, recent attempts with their
 * outcomes and errors, and top programs as inspiration — read from the run's archive.
 */
function mutationContext(input: ProposeInput, framework: Framework): Pick<MutationRequest, 'parent' | 'best' | 'attempts' | 'inspirations'> {
  const records = readIterationRecords(input.runId).filter((r) => r.iteration < input.iteration);
  const scored = (r: IterationRecord) => ({
    block: loadProgram(input.runId, framework, r.programHash!).block,
    fitness: r.fitness,
    fit: r.fit,
    iteration: r.iteration,
    description: r.description,
    programHash: r.programHash!,
  });
  const trained = records.filter((r) => r.programHash && r.fitness !== null).sort((a, b) => b.fitness! - a.fitness!);
  const parent = records.find((r) => r.programHash === input.parentHash && r.fitness !== null);
  const best = trained.find((r) => r.status === 'accepted');
  const current = input.failedAttempts.map((a, i) => ({ iteration: input.iteration, attempt: i + 1, outcome: a.kind, description: a.description, error: a.error }));
  return {
    parent: parent ? { fitness: parent.fitness, fit: parent.fit, iteration: parent.iteration, description: parent.description } : undefined,
    best: best ? scored(best) : null,
    attempts: [...records.flatMap(feedbackOf), ...current],
    inspirations: trained.filter((r) => r.programHash !== input.parentHash).slice(0, input.settings.prompt?.inspirations ?? 3).map(scored),
  };
}

export async function proposeCandidate(input: ProposeInput): Promise<Candidate> {
  const { settings } = input;
  const framework = settings.framework;
  if (input.iteration === 0 || input.parentHash === null) {
    const program = baselineProgram(framework);
    saveProgram(input.runId, program);
    return { programHash: program.hash, description: `${framework} baseline (causal softmax attention)`, provider: 'baseline', usage: emptyTotals() };
  }
  return underFailureRule(async () => {
    // Every LLM reply is kept (cache/llm-replies/<runId>/) as it arrives: this step retried after its worker
    // died, or its iteration run again (`evo retry`, `evo resume`), gets the same replies without asking again.
    const { provider, notice } = chooseProvider(settings, process.env, { replies: new ReplyStore() });
    if (!noticesLogged.has(notice)) {
      noticesLogged.add(notice);
      log.info(notice);
    }
    const parent = loadProgram(input.runId, framework, input.parentHash!);
    const history = input.history
      .filter((h) => h.programHash !== null)
      .map((h) => ({ block: loadProgram(input.runId, framework, h.programHash!).block, fitness: h.fitness, status: h.status }));
    const request: MutationRequest = {
      framework,
      parentBlock: parent.block,
      iteration: input.iteration,
      seed: settings.seed,
      history,
      proposalIndex: input.proposalIndex,
      // The attempt within the iteration: every earlier attempt of this iteration is in failedAttempts.
      exchange: { runId: input.runId, iteration: input.iteration, attempt: input.failedAttempts.length + 1 },
      ...mutationContext(input, framework),
    };
    let proposal;
    try {
      proposal = await provider.propose(request);
    } catch (err) {
      // A reply that cannot become a program is a refused attempt, not a failed step.
      if (err instanceof ReplyRefused) return { programHash: null, description: `${provider.name} reply`, provider: provider.name, refused: err.message, usage: totalsOf(err.usage) };
      // The failed calls' usage travels with the failure, so the run's totals still count it.
      if (err instanceof LlmError) {
        throw ApplicationFailure.create({ message: err.message, type: err.code, nonRetryable: !err.retryable, details: [{ usage: totalsOf(err.usage) }] });
      }
      throw err;
    }
    const program = makeProgram(framework, proposal.block);
    saveProgram(input.runId, program);
    log.info('proposed candidate', { iteration: input.iteration, programHash: program.hash, provider: proposal.provider });
    return { programHash: program.hash, description: proposal.description, provider: proposal.provider, usage: totalsOf(proposal.usage) };
  });
}
