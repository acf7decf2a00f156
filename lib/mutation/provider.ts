// The one mutation-provider interface (offline catalogue, file replay, OpenAI-compatible LLM) and the
// choice between them: an LLM when a key or base URL is configured, else the offline catalogue.
import type { Framework } from '../program';
import type { MutationSettings, RunSettings } from '../pipeline-types';
import type { ScalingFit } from '../scaling';
import type { LlmSettings, PromptSettings } from '../config/schema';
import { EvoError } from '../errors';
import { defaultConfigPath, loadRunConfig } from '../config/load';
import { OfflineCatalogueProvider } from './offline';
import { FilesProvider } from './files';
import { OpenAiProvider, resolveEndpoint } from './openai';

export type FitSummary = Pick<ScalingFit, 'intercept' | 'slope' | 'r2' | 'slopeStdErr'>;

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

export interface ProviderChoice {
  provider: MutationProvider;
  /** One line for logs and the CLI: which provider is in use and why. Holds no secret. */
  notice: string;
}

export type ProviderSettings = Pick<RunSettings, 'framework'> & {
  mutation: MutationSettings;
  llm?: LlmSettings;
  prompt?: PromptSettings;
};

/**
 * Files when mutation.provider is 'files'; otherwise an OpenAI-compatible LLM when llm.provider is
 * 'openai', or 'auto' with a key or base URL configured; otherwise the offline catalogue. Runs built
 * without a config take the LLM and prompt settings of configs/<framework>.yaml.
 */
export function chooseProvider(settings: ProviderSettings, env: NodeJS.ProcessEnv = process.env): ProviderChoice {
  if (settings.mutation.provider === 'files') {
    const dir = settings.mutation.dir ?? '';
    const files = new FilesProvider(dir);
    return {
      provider: { name: files.name, propose: (req) => files.propose(req, req.proposalIndex ?? 0) },
      notice: `mutation: replaying candidate blocks from ${dir}`,
    };
  }
  const wanted = settings.llm?.provider ?? 'auto';
  if (wanted !== 'offline') {
    const keyEnv = settings.llm?.apiKeyEnv ?? 'OPENAI_API_KEY';
    const configured = Boolean(env[keyEnv] || env.OPENAI_BASE_URL || settings.llm?.apiBase);
    if (configured) {
      const { llm, prompt } = settings.llm && settings.prompt ? { llm: settings.llm, prompt: settings.prompt } : loadRunConfig(defaultConfigPath(settings.framework));
      const provider = new OpenAiProvider({ llm, prompt, env });
      const endpoint = resolveEndpoint(llm, env);
      const models = llm.fallbackModel ? `primary ${llm.primaryModel}, fallback ${llm.fallbackModel}` : `model ${llm.primaryModel}`;
      const key = endpoint.keyFrom ? `key from ${endpoint.keyFrom}` : 'no API key';
      return { provider, notice: `mutation: OpenAI-compatible API at ${endpoint.display} (${models}; ${key})` };
    }
    if (wanted === 'openai') {
      throw new EvoError(
        `llm.provider is openai but neither ${keyEnv} nor OPENAI_BASE_URL is set in this worker's environment (nor llm.api_base in the config)`,
        'LLM_NOT_CONFIGURED',
      );
    }
  }
  const why = wanted === 'offline' ? 'llm.provider is offline' : `no ${settings.llm?.apiKeyEnv ?? 'OPENAI_API_KEY'} or OPENAI_BASE_URL set`;
  return { provider: new OfflineCatalogueProvider(), notice: `mutation: offline catalogue of published attention variants (${why})` };
}
