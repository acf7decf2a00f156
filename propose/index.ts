// Chooses the mutation provider for a run: replayed files, an OpenAI-compatible LLM when the run has
// LLM settings and a key or base URL is configured, else the offline catalogue.
import type { LlmSettings, MutationSettings, PromptSettings, RunSettings } from '../contract';
import { EvoError } from '../core/errors';
import type { MutationProvider } from './provider';
import { OfflineCatalogueProvider } from './offline/provider';
import { FilesProvider } from './files';
import { OpenAiProvider, resolveEndpoint } from './llm/openai';
import type { ReplyStore } from './llm/replies';

export type * from './provider';

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
 * 'openai', or 'auto' with a key or base URL configured; otherwise the offline catalogue. The LLM
 * and prompt settings travel in the run's settings (resolved from its config when it started): a run
 * started without them has no LLM to call.
 */
export function chooseProvider(settings: ProviderSettings, env: NodeJS.ProcessEnv = process.env, opts: { replies?: ReplyStore } = {}): ProviderChoice {
  if (settings.mutation.provider === 'files') {
    const dir = settings.mutation.dir ?? '';
    const files = new FilesProvider(dir);
    return {
      provider: { name: files.name, propose: (req) => files.propose(req, req.proposalIndex ?? 0) },
      notice: `mutation: replaying candidate blocks from ${dir}`,
    };
  }
  const { llm, prompt } = settings;
  if (!llm || !prompt) return { provider: new OfflineCatalogueProvider(), notice: 'mutation: offline catalogue of published attention variants (the run has no LLM settings)' };
  const wanted = llm.provider;
  if (wanted !== 'offline') {
    const keyEnv = llm.apiKeyEnv;
    const configured = Boolean(env[keyEnv] || env.OPENAI_BASE_URL || llm.apiBase);
    if (configured) {
      const provider = new OpenAiProvider({ llm, prompt, env, replies: opts.replies });
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
  const why = wanted === 'offline' ? 'llm.provider is offline' : `no ${llm.apiKeyEnv} or OPENAI_BASE_URL set`;
  return { provider: new OfflineCatalogueProvider(), notice: `mutation: offline catalogue of published attention variants (${why})` };
}
