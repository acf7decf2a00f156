// The one mutation-provider interface, with what a proposal is asked and what it answers. Every
// provider (offline catalogue, file replay, OpenAI-compatible LLM) implements it; propose/index.ts chooses.
import type { FitSummary, Framework } from '../contract';

export type { FitSummary };

/** A program with its score, as the prompt shows it. */
export interface ScoredProgram {
  block: string;
  fitness: number | null;
  fit?: FitSummary | null;
  iteration?: number;
  description?: string;
  programHash?: string;
}

/**
 * How an earlier proposal ended: refused as a reply (unparseable, edits outside the block…),
 * refused by validation, trained and rejected or accepted, or an LLM call that failed.
 */
export type AttemptOutcome = 'reply-refused' | 'validation-failed' | 'rejected' | 'accepted' | 'llm-error';

/** One earlier attempt, for the failure side-channel of the next prompt. */
export interface AttemptFeedback {
  iteration: number;
  /** 1-based attempt within its iteration. */
  attempt: number;
  outcome: AttemptOutcome;
  description: string;
  /** The refusal or validation reason, when there was one. */
  error?: string;
  fitness?: number | null;
}

export interface MutationRequest {
  framework: Framework;
  parentBlock: string;
  iteration: number;
  seed: number;
  /** Blocks already tried in this run, so proposals don't repeat them. */
  history: { block: string; fitness: number | null; status: string }[];
  /** The parent's score. */
  parent?: { fitness: number | null; fit?: FitSummary | null; iteration?: number; description?: string };
  best?: ScoredProgram | null;
  /** Recent attempts, oldest first (the prompt shows the last prompt.history_window). */
  attempts?: AttemptFeedback[];
  /** Top programs of the archive, best first. */
  inspirations?: ScoredProgram[];
  /** Proposals made so far in this run, counting every attempt (the files provider replays in order). */
  proposalIndex?: number;
  /**
   * Which exchange of which run this is (the run's workflow ID, the iteration, the 1-based attempt within
   * it): with it, an LLM provider keeps every reply in the reply store and answers a repeated request from
   * there (propose/llm/replies.ts). Without it nothing is stored.
   */
  exchange?: ExchangeScope;
}

/** One proposal's place in a run: what, besides the request body, determines an LLM request. */
export interface ExchangeScope {
  runId: string;
  iteration: number;
  attempt: number;
}

/** One request to an LLM: tokens from the response's `usage`, cost from the config's price table. */
export interface LlmCall {
  model: string;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  ok: boolean;
  /** Why the call failed (secrets scrubbed). */
  error?: string;
  durationMs: number;
  /** The reply-store key of a successful call's reply, when the reply store kept it. */
  replyKey?: string;
  /** True when the reply came from the reply store: it was requested (and paid) once, earlier. */
  reused?: boolean;
}

export interface LlmUsage {
  calls: LlmCall[];
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface MutationProposal {
  block: string;
  description: string;
  provider: string;
  variantIds: string[];
  /** LLM calls made for this proposal (absent for providers that call no LLM). */
  usage?: LlmUsage;
}

export interface MutationProvider {
  readonly name: string;
  propose(req: MutationRequest): Promise<MutationProposal>;
}
