// The LLM mutation provider for any OpenAI-compatible chat API (OpenAI, proxies, vLLM, Ollama,
// llama.cpp server, OpenRouter): retries, model fallback, reasoning-model parameters and a cost ledger.
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { EvoError } from '../../core/errors';
import { priceFor, type LlmSettings, type PromptSettings } from '../../config/schema';
import { usageFromCalls } from './ledger';
import { buildPrompt, type PromptMessages } from './prompt';
import { parseReply, ReplyRefused } from './reply';
import type { ReplyStore } from './replies';
import type { ExchangeScope, LlmCall, LlmUsage, MutationProposal, MutationProvider, MutationRequest } from '../provider';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';
/** The client insists on a credential; servers without authentication (vLLM, Ollama…) ignore it. */
const KEYLESS_CREDENTIAL = 'no-key';
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;

export type LlmErrorCode = 'LLM_AUTH' | 'LLM_BAD_REQUEST' | 'LLM_QUOTA' | 'LLM_UNAVAILABLE';

/**
 * An LLM exchange that produced no reply. LLM_AUTH, LLM_BAD_REQUEST and LLM_QUOTA need a person
 * (key, settings, credit) and must not be retried; LLM_UNAVAILABLE is every model failing
 * transiently and may be retried later. `usage` holds the failed calls.
 */
export class LlmError extends EvoError {
  constructor(message: string, code: LlmErrorCode, readonly usage: LlmUsage) {
    // Every model down is the infrastructure's (retried); keys, quota and settings need a person.
    super(message, code, code === 'LLM_UNAVAILABLE' ? 'infrastructure' : 'user');
    this.name = 'LlmError';
  }
}

export interface Endpoint {
  /** Passed to the client. */
  baseURL: string;
  /** For notices and messages: scheme, host and path only (no credentials, no query). */
  display: string;
  /** The variable the key came from; null when none is set (a keyless local server). */
  keyFrom: string | null;
}

/** Base URL: llm.api_base, else OPENAI_BASE_URL, else OpenAI. The key: the variable llm.api_key_env names. */
export function resolveEndpoint(llm: LlmSettings, env: NodeJS.ProcessEnv): Endpoint {
  const baseURL = llm.apiBase ?? env.OPENAI_BASE_URL ?? OPENAI_BASE_URL;
  let display = baseURL;
  try {
    const u = new URL(baseURL);
    display = `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}`;
  } catch {
    display = scrubSecrets(baseURL, []);
  }
  return { baseURL, display, keyFrom: env[llm.apiKeyEnv] ? llm.apiKeyEnv : null };
}

/** Removes the given secrets and anything shaped like a key or a bearer token from a message. */
export function scrubSecrets(text: string, secrets: (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out
    .replace(/\bsk-[A-Za-z0-9_-]{6,}/g, 'sk-[redacted]')
    .replace(/(Bearer\s+)[^\s"',;]+/gi, '$1[redacted]')
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//[redacted]@');
}

/**
 * OpenAI's reasoning models (o1, o3, o4-mini, gpt-5…) take max_completion_tokens and refuse a
 * temperature; gpt-5-chat is a chat model. A router prefix ("openai/o3") is ignored.
 */
export function isReasoningModel(model: string): boolean {
  const base = model.slice(model.lastIndexOf('/') + 1).toLowerCase();
  if (/^o\d/.test(base)) return true;
  return /^gpt-5/.test(base) && !/-chat\b/.test(base);
}

/** What a model accepts, starting from its name and corrected by what its server refuses. */
interface ModelQuirks {
  temperature: boolean;
  maxCompletionTokens: boolean;
  reasoningEffort: boolean;
}

/** Learned per endpoint and model for the life of the process, so a refusal costs one request only once. */
const learnedQuirks = new Map<string, ModelQuirks>();

function modelText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p && typeof p === 'object' && 'text' in p ? String(p.text) : '')).join('');
  return '';
}

type Failure =
  | { kind: 'auth' | 'quota' | 'bad-request'; message: string }
  | { kind: 'parameter'; message: string; parameter: keyof ModelQuirks }
  | { kind: 'transient'; message: string; retryAfterMs?: number };

function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers?.get('retry-after');
  if (!ra) return undefined;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export interface Completion {
  text: string;
  /** The model that answered (the fallback when the primary failed). */
  model: string;
  finishReason: string | null;
  usage: LlmUsage;
}

export interface OpenAiProviderOptions {
  llm: LlmSettings;
  prompt: PromptSettings;
  env?: NodeJS.ProcessEnv;
  /** Where retries and fallbacks are reported (lines hold no secret). */
  log?: (line: string) => void;
  /**
   * Keeps every reply of a request that carries its exchange (MutationRequest.exchange) and answers the
   * same request again from there, without calling the API (propose/llm/replies.ts).
   */
  replies?: ReplyStore;
}

export class OpenAiProvider implements MutationProvider {
  readonly name = 'openai';
  readonly endpoint: Endpoint;
  // Private fields stay out of JSON.stringify, util.inspect and error serialisation.
  readonly #client: OpenAI;
  readonly #secret: string | undefined;
  readonly #llm: LlmSettings;
  readonly #prompt: PromptSettings;
  readonly #log: (line: string) => void;
  readonly #replies: ReplyStore | undefined;

  constructor(opts: OpenAiProviderOptions) {
    const env = opts.env ?? process.env;
    this.#llm = opts.llm;
    this.#prompt = opts.prompt;
    this.#log = opts.log ?? ((line) => console.warn(line));
    this.#replies = opts.replies;
    this.endpoint = resolveEndpoint(opts.llm, env);
    this.#secret = env[opts.llm.apiKeyEnv] || undefined;
    this.#client = new OpenAI({
      apiKey: this.#secret ?? KEYLESS_CREDENTIAL,
      baseURL: this.endpoint.baseURL,
      timeout: opts.llm.timeoutS * 1000,
      // Retries are ours: visible in the ledger and the log, honouring Retry-After, with fallback.
      maxRetries: 0,
      logLevel: 'off',
    });
  }

  async propose(req: MutationRequest): Promise<MutationProposal> {
    const completion = await this.complete(buildPrompt(req, this.#prompt), req.exchange);
    try {
      const truncated = completion.finishReason === 'length' ? { truncatedAt: this.#llm.maxTokens } : {};
      const parsed = parseReply(completion.text, req.parentBlock, req.framework, truncated);
      return {
        block: parsed.block,
        description: parsed.description,
        provider: `${this.name}:${completion.model}`,
        variantIds: [],
        usage: completion.usage,
      };
    } catch (err) {
      if (err instanceof ReplyRefused) throw err.withContext(completion.usage, completion.text);
      throw err;
    }
  }

  /**
   * One reply for the messages: the primary model with retries, then the fallback. With an exchange and a
   * reply store, a reply stored for this exchange's request (to either model) is the answer, and every
   * new reply is stored before it is used.
   */
  async complete(messages: PromptMessages, exchange?: ExchangeScope): Promise<Completion> {
    const calls: LlmCall[] = [];
    const models = [this.#llm.primaryModel, this.#llm.fallbackModel].filter((m, i, all): m is string => !!m && all.indexOf(m) === i);
    const scope = this.#replies && exchange ? exchange : undefined;
    // The exchange answered before (its step was retried, or its iteration runs again): the same reply,
    // before any request. The fallback's reply counts too: that is how the exchange ended last time.
    for (const model of scope ? models : []) {
      const reused = this.reuse(scope!, model, this.params(model, messages), calls);
      if (reused) return { ...reused, model, usage: usageFromCalls(calls) };
    }
    const failures: string[] = [];
    for (const [i, model] of models.entries()) {
      const outcome = await this.tryModel(model, messages, calls, scope);
      if ('text' in outcome) return { ...outcome, model, usage: usageFromCalls(calls) };
      failures.push(`${model}: ${outcome.reason}`);
      if (i + 1 < models.length) this.#log(`LLM ${model} keeps failing (${outcome.reason}); falling back to ${models[i + 1]}`);
    }
    throw new LlmError(`no LLM at ${this.endpoint.display} answered: ${failures.join('; ')}`, 'LLM_UNAVAILABLE', usageFromCalls(calls));
  }

  private quirks(model: string): ModelQuirks {
    const key = `${this.endpoint.baseURL} ${model}`;
    let q = learnedQuirks.get(key);
    if (!q) {
      const reasoning = isReasoningModel(model);
      q = { temperature: !reasoning, maxCompletionTokens: reasoning, reasoningEffort: reasoning };
      learnedQuirks.set(key, q);
    }
    return q;
  }

  private params(model: string, messages: PromptMessages): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
    const q = this.quirks(model);
    return {
      model,
      messages: [
        { role: 'system', content: messages.system },
        { role: 'user', content: messages.user },
      ],
      ...(q.maxCompletionTokens ? { max_completion_tokens: this.#llm.maxTokens } : { max_tokens: this.#llm.maxTokens }),
      ...(q.temperature ? { temperature: this.#llm.temperature } : {}),
      ...(q.reasoningEffort && this.#llm.reasoningEffort ? { reasoning_effort: this.#llm.reasoningEffort } : {}),
    };
  }

  private cost(model: string, promptTokens: number, completionTokens: number): number {
    const p = priceFor(this.#llm.prices, model);
    return p ? (promptTokens * p.promptPerMTok + completionTokens * p.completionPerMTok) / 1e6 : 0;
  }

  private scrub(text: string): string {
    return scrubSecrets(text, [this.#secret]);
  }

  /** The stored reply to exactly this request, counted in `calls` as the call that fetched it (tokens, cost), marked reused. */
  private reuse(scope: ExchangeScope, model: string, params: object, calls: LlmCall[]): { text: string; finishReason: string | null } | undefined {
    const stored = this.#replies!.load(scope, model, params);
    if (!stored) return undefined;
    calls.push({ ...stored.call, model, replyKey: stored.key, reused: true });
    this.#log(`LLM reply for ${scope.runId} iteration ${scope.iteration} attempt ${scope.attempt} (${model}) taken from the reply store (${stored.key}): not requested again`);
    return { text: stored.text, finishReason: stored.finishReason };
  }

  /** Keeps a new reply before it is used; a store that cannot write (a full disk) costs only the reuse. */
  private keep(scope: ExchangeScope, model: string, params: object, reply: { text: string; finishReason: string | null }, call: LlmCall): LlmCall {
    try {
      return { ...call, replyKey: this.#replies!.save(scope, model, params, reply, call) };
    } catch (err) {
      this.#log(`LLM reply for ${scope.runId} iteration ${scope.iteration} attempt ${scope.attempt} could not be stored (${this.scrub(err instanceof Error ? err.message : String(err))}); a retry of this step would ask again`);
      return call;
    }
  }

  /** A reply, or why this model gave up; throws on failures that no other model or retry can fix. */
  private async tryModel(
    model: string,
    messages: PromptMessages,
    calls: LlmCall[],
    scope?: ExchangeScope,
  ): Promise<{ text: string; finishReason: string | null } | { reason: string }> {
    const llm = this.#llm;
    let retries = 0;
    let waitedMs = 0;
    const adjusted = new Set<keyof ModelQuirks>();
    for (;;) {
      const params = this.params(model, messages);
      // A parameter learned since the pre-check (or a quirk relearned by a new worker) gives another body.
      const reused = scope ? this.reuse(scope, model, params, calls) : undefined;
      if (reused) return reused;
      const started = Date.now();
      try {
        const res = await this.#client.chat.completions.create(params, { timeout: llm.timeoutS * 1000, maxRetries: 0 });
        if (!Array.isArray(res?.choices)) throw new Error('the answer is not a chat completion (no choices)');
        const promptTokens = res.usage?.prompt_tokens ?? 0;
        const completionTokens = res.usage?.completion_tokens ?? 0;
        const choice = res.choices?.[0];
        const message = choice?.message;
        const reply = { text: modelText(message?.content) || (message?.refusal ?? ''), finishReason: choice?.finish_reason ?? null };
        const call: LlmCall = { model, promptTokens, completionTokens, costUsd: this.cost(model, promptTokens, completionTokens), ok: true, durationMs: Date.now() - started };
        // Stored before anything else happens with it: from here on this request is never made again.
        calls.push(scope ? this.keep(scope, model, params, reply, call) : call);
        return reply;
      } catch (err) {
        const failure = this.classify(err, model, params);
        calls.push({ model, promptTokens: 0, completionTokens: 0, costUsd: 0, ok: false, error: failure.message, durationMs: Date.now() - started });
        const usage = () => usageFromCalls(calls);
        switch (failure.kind) {
          case 'auth':
            throw new LlmError(`${failure.message}; check ${llm.apiKeyEnv} (and the base URL ${this.endpoint.display}) in the workers' environment`, 'LLM_AUTH', usage());
          case 'quota':
            throw new LlmError(`${failure.message}; add credit or choose another llm.primary_model`, 'LLM_QUOTA', usage());
          case 'bad-request':
            throw new LlmError(`${failure.message}; check llm.primary_model, llm.fallback_model and llm.max_tokens`, 'LLM_BAD_REQUEST', usage());
          case 'parameter': {
            if (adjusted.has(failure.parameter)) {
              throw new LlmError(`${failure.message}; check llm settings for ${model}`, 'LLM_BAD_REQUEST', usage());
            }
            adjusted.add(failure.parameter);
            const q = this.quirks(model);
            if (failure.parameter === 'maxCompletionTokens') q.maxCompletionTokens = !q.maxCompletionTokens;
            else q[failure.parameter] = false;
            this.#log(`LLM ${model} refused a parameter (${failure.message}); retrying with ${describeQuirk(failure.parameter, q)}`);
            continue;
          }
          case 'transient': {
            if (retries >= llm.maxRetries) return { reason: `${failure.message} (${retries + 1} request${retries ? 's' : ''})` };
            const wait = failure.retryAfterMs ?? Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** retries) * (0.5 + Math.random() / 2);
            if (waitedMs + wait > llm.maxRetryWaitS * 1000) {
              return { reason: `${failure.message}; waiting ${(wait / 1000).toFixed(1)} s more would exceed llm.max_retry_wait_s (${llm.maxRetryWaitS} s)` };
            }
            retries += 1;
            this.#log(`LLM ${model}: ${failure.message}; retry ${retries} of ${llm.maxRetries} in ${(wait / 1000).toFixed(1)} s`);
            await new Promise((resolve) => setTimeout(resolve, wait));
            waitedMs += wait;
            continue;
          }
        }
      }
    }
  }

  private classify(err: unknown, model: string, params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming): Failure {
    if (err instanceof APIConnectionTimeoutError) return { kind: 'transient', message: `request to ${model} timed out after ${this.#llm.timeoutS} s` };
    if (err instanceof APIConnectionError) {
      const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return { kind: 'transient', message: this.scrub(`cannot reach ${this.endpoint.display}${cause}`) };
    }
    if (!(err instanceof APIError) || typeof err.status !== 'number') {
      // An unreadable answer (a proxy's HTML page, a cut-off body) is the server's hiccup, not a setting to fix.
      return { kind: 'transient', message: this.scrub(`request to ${model} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`) };
    }
    const status = err.status;
    const said = this.scrub(err.message.split('\n')[0]);
    if (status === 401 || status === 403) {
      return { kind: 'auth', message: `LLM ${status === 401 ? 'authentication failed' : 'permission denied'} at ${this.endpoint.display} for ${model} (HTTP ${said})` };
    }
    if (status === 429 && err.code === 'insufficient_quota') return { kind: 'quota', message: `LLM quota exhausted at ${this.endpoint.display} (HTTP ${said})` };
    if (status === 408 || status === 409 || status === 429 || status >= 500) {
      return { kind: 'transient', message: `${model} answered HTTP ${said}`, retryAfterMs: retryAfterMs(err.headers) };
    }
    if (status === 400 || status === 422) {
      const text = `${err.param ?? ''} ${err.message}`.toLowerCase();
      if ('temperature' in params && text.includes('temperature')) return { kind: 'parameter', parameter: 'temperature', message: `HTTP ${said}` };
      if ('reasoning_effort' in params && text.includes('reasoning_effort')) return { kind: 'parameter', parameter: 'reasoningEffort', message: `HTTP ${said}` };
      if (/max_(completion_)?tokens/.test(text) && /support|unrecognized|unknown|instead|extra/.test(text)) {
        return { kind: 'parameter', parameter: 'maxCompletionTokens', message: `HTTP ${said}` };
      }
    }
    return { kind: 'bad-request', message: `LLM request to ${model} was refused as invalid (HTTP ${said})` };
  }
}

function describeQuirk(parameter: keyof ModelQuirks, q: ModelQuirks): string {
  if (parameter === 'maxCompletionTokens') return q.maxCompletionTokens ? 'max_completion_tokens' : 'max_tokens';
  return parameter === 'temperature' ? 'no temperature' : 'no reasoning_effort';
}
