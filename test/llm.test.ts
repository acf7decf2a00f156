// LLM-guided mutation through the real `openai` client against an OpenAI-compatible server on loopback:
// replies become blocks or precise refusals, retries and fallback, reasoning parameters, secrets, the ledger.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as util from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attentionContext, causalMask, ParamStore } from '../evaluator/attention-runtime';
import { baselineBlock, compileAttention, frameworkTemplate, type Framework } from '../core/program';
import { loadRunConfig, defaultConfigPath } from '../config/load';
import type { LlmSettings, PromptSettings } from '../config/schema';
import { CATALOGUE } from '../propose/offline/catalogue';
import { LlmError, OpenAiProvider, isReasoningModel, scrubSecrets } from '../propose/llm/openai';
import { buildPrompt } from '../propose/llm/prompt';
import { chooseProvider, type AttemptFeedback, type LlmCall, type MutationRequest } from '../propose';
import { parseReply, ReplyRefused } from '../propose/llm/reply';
import { addTotals, budgetExceeded, budgetMessage, emptyTotals, formatTotals, mergeUsage, totalsOf, usageFromCalls } from '../propose/llm/ledger';
import { OfflineCatalogueProvider } from '../propose/offline/provider';
import { ReplyStore, type StoredReply } from '../propose/llm/replies';
import { collectGarbage } from '../ops/cache';
import { completion, errorReply, FakeOpenAi, TEMPERATURE_DIFF } from './helpers/fake-openai';

const KEY = 'sk-test-Zq8vN3xY7pL2mK9wR4tB6cD1';
const PRIMARY = 'gpt-4.1';
const FALLBACK = 'gpt-4.1-mini';

const server = new FakeOpenAi();
let baseURL = '';
/** Everything the tests saw come out of the provider: checked for the key at the end. */
const emitted: unknown[] = [];
const logLines: string[] = [];

const CD_CONFIG = loadRunConfig(defaultConfigPath('coefficient_dynamics'));

before(async () => {
  baseURL = await server.start();
  await tf.setBackend('wasm');
  await tf.ready();
});

after(async () => {
  await server.close();
});

beforeEach(() => server.reset());

function llm(over: Partial<LlmSettings> = {}): LlmSettings {
  return {
    ...CD_CONFIG.llm,
    primaryModel: PRIMARY,
    fallbackModel: FALLBACK,
    apiBase: baseURL,
    timeoutS: 10,
    maxRetries: 2,
    maxRetryWaitS: 10,
    prices: {
      [PRIMARY]: { promptPerMTok: 2, completionPerMTok: 8 },
      [FALLBACK]: { promptPerMTok: 0.4, completionPerMTok: 1.6 },
      'o4-mini': { promptPerMTok: 1.1, completionPerMTok: 4.4 },
    },
    budgetUsd: null,
    ...over,
  };
}

function provider(over: Partial<LlmSettings> = {}, prompt: Partial<PromptSettings> = {}): OpenAiProvider {
  return new OpenAiProvider({
    llm: llm(over),
    prompt: { ...CD_CONFIG.prompt, ...prompt },
    env: { OPENAI_API_KEY: KEY },
    log: (line) => logLines.push(line),
  });
}

function request(framework: Framework = 'coefficient_dynamics', extra: Partial<MutationRequest> = {}): MutationRequest {
  return {
    framework,
    parentBlock: baselineBlock(framework),
    iteration: 4,
    seed: 1,
    history: [],
    parent: { fitness: 0.0512, fit: { intercept: 5.91, slope: -0.0512, r2: 0.97, slopeStdErr: 0.006 }, iteration: 0, description: 'baseline' },
    best: { block: baselineBlock(framework), fitness: 0.0512 },
    ...extra,
  };
}

/** Captures a rejection for later assertions (and for the key check). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    emitted.push(await p);
  } catch (err) {
    emitted.push(err, (err as Error).message, { ...(err as object) });
    return err as Error;
  }
  assert.fail('expected a rejection');
}

/** One forward pass of the block on the wasm backend: (2, 8, 16) in, (2, 8, 16) finite out. */
function forwardOnce(block: string): void {
  const store = new ParamStore(7);
  const mask = causalMask(8);
  try {
    const ctx = attentionContext(store, 'L0.attn', { dModel: 16, nHeads: 2, seqLen: 8 }, mask);
    const values = tf.tidy(() => {
      const y = compileAttention(block)(tf, ctx, tf.randomNormal([2, 8, 16], 0, 1, 'float32', 3));
      assert.deepEqual(y.shape, [2, 8, 16]);
      return y.dataSync() as Float32Array;
    });
    assert.ok(values.every(Number.isFinite), 'the output is finite');
  } finally {
    store.dispose();
    mask.dispose();
  }
}


function wholeFileReply(framework: Framework, block: string, edit: (file: string) => string = (f) => f): string {
  const template = frameworkTemplate(framework);
  const start = template.indexOf('import type');
  const file = edit(template.slice(start).replace(/\/\/ EVOLVE-BLOCK-START\n[\s\S]*\/\/ EVOLVE-BLOCK-END/, `// EVOLVE-BLOCK-START\n${block}// EVOLVE-BLOCK-END`));
  return `An RBF kernel: QK-norm turns exp(q·k/τ) into a Gaussian kernel with a learned bandwidth.\n\n\`\`\`typescript\n${file}\`\`\`\n`;
}

describe('replies become candidate blocks', () => {
  test('a SEARCH/REPLACE diff is applied to the parent block and the result runs', async () => {
    server.script(completion(TEMPERATURE_DIFF, { prompt_tokens: 3000, completion_tokens: 500 }));
    const proposal = await provider().propose(request());
    emitted.push(proposal);
    assert.match(proposal.block, /ctx\.param\('logTau'/);
    assert.ok(proposal.block.includes('function attention(tf: Tf, ctx: AttentionContext, x: Tensor): Tensor {'));
    assert.equal(proposal.provider, `openai:${PRIMARY}`);
    assert.match(proposal.description, /^Learned per-head temperature/);
    forwardOnce(proposal.block);

    // One call, its tokens and its cost from the price table: 3000·2 + 500·8 per million.
    assert.equal(proposal.usage?.calls.length, 1);
    assert.deepEqual(
      { ...proposal.usage!.calls[0], durationMs: 0 },
      { model: PRIMARY, promptTokens: 3000, completionTokens: 500, costUsd: 0.01, ok: true, durationMs: 0 },
    );
    assert.equal(proposal.usage?.costUsd, 0.01);

    // What the server received: the system message with the framework header, the parent and its score.
    const [req] = server.requests;
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.body.model, PRIMARY);
    assert.equal(req.body.temperature, 0.8);
    assert.equal(req.body.max_tokens, 16000);
    assert.equal(req.body.max_completion_tokens, undefined);
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    const [system, user] = req.body.messages;
    assert.equal(system.role, 'system');
    assert.match(system.content, /WHAT CAN BE EVOLVED/);
    assert.match(system.content, /Framework: COEFFICIENT DYNAMICS/);
    assert.match(user.content, /const eta = tf\.sum\(phi, -1, true\)/);
    assert.match(user.content, /fitness 0\.0512/);
    assert.match(user.content, /<<<<<<< SEARCH/);
  });

  test('a whole block in a typescript fence (with the fixed part around it) becomes the candidate', async () => {
    const variant = CATALOGUE.find((v) => v.id === 'ttr-rbf-kernel');
    assert.ok(variant);
    server.script(completion(wholeFileReply('test_time_regression', variant.block)));
    const proposal = await provider({}, { replyFormat: 'block' }).propose(request('test_time_regression'));
    emitted.push(proposal);
    assert.equal(proposal.block.trim(), variant.block.trim());
    assert.match(proposal.description, /^An RBF kernel/);
    forwardOnce(proposal.block);
    const user = server.requests[0].body.messages[1].content;
    assert.match(user, /complete new EVOLVE-BLOCK in a single ```typescript fence/);
    assert.match(server.requests[0].body.messages[0].content, /TEST-TIME REGRESSION/);
  });

  test('a bare block without markers, and local models\' <think> sections, are accepted', () => {
    const variant = CATALOGUE.find((v) => v.framework === 'matrix_mixer')!;
    const reply = `<think>maybe a diff? <<<<<<< SEARCH is tempting</think>\nUse ${variant.id}.\n\`\`\`ts\n${variant.block}\`\`\``;
    const parsed = parseReply(reply, baselineBlock('matrix_mixer'), 'matrix_mixer');
    assert.equal(parsed.form, 'block');
    assert.equal(parsed.block.trim(), variant.block.trim());
  });
});

describe('refused replies', () => {
  const parent = baselineBlock('coefficient_dynamics');
  const refusal = (reply: string, framework: Framework = 'coefficient_dynamics', opts = {}): ReplyRefused => {
    try {
      parseReply(reply, baselineBlock(framework), framework, opts);
    } catch (err) {
      assert.ok(err instanceof ReplyRefused, String(err));
      assert.equal(err.code, 'REPLY_REFUSED');
      return err;
    }
    assert.fail('expected a refusal');
  };
  const diff = (search: string, replace: string) => `<<<<<<< SEARCH\n${search}\n=======\n${replace}\n>>>>>>> REPLACE`;

  test('each refusal names its cause precisely', () => {
    assert.equal(refusal('   \n').kind, 'empty');
    assert.equal(refusal('Sigmoid attention would scale better.').kind, 'no-code');

    const missing = refusal(diff('  const h = tf.mul(k, 0.5);', '  const h = k;'));
    assert.equal(missing.kind, 'search-not-found');
    assert.match(missing.message, /first line "const h = tf\.mul\(k, 0\.5\);" is not found/);

    const outside = refusal(diff('export { attention };', 'export { attention as attn };'));
    assert.equal(outside.kind, 'outside-block');
    assert.match(outside.message, /first line "export \{ attention \};"\) is in the fixed part of frameworks\/coefficient_dynamics\.ts/);
    assert.equal(refusal(diff('// EVOLVE-BLOCK-END', '')).kind, 'outside-block');

    const headerChanged = refusal(wholeFileReply('coefficient_dynamics', parent.replace('φ = exp', 'φ = sigmoid'), (f) => `// My improved file\n${f}`));
    assert.equal(headerChanged.kind, 'outside-block');
    assert.match(headerChanged.message, /"\/\/ My improved file" is not in the fixed part/);

    const renamed = refusal('```typescript\n' + parent.replace('function attention(', 'function attn(') + '```');
    assert.equal(renamed.kind, 'entry-point');
    assert.match(renamed.message, /defines `attn` instead; the entry point cannot be renamed/);

    const twoParams = refusal(diff('function attention(tf: Tf, ctx: AttentionContext, x: Tensor): Tensor {', 'function attention(tf: Tf, x: Tensor): Tensor {\n  const ctx = undefined as unknown as AttentionContext;'));
    assert.match(twoParams.message, /must take the three parameters \(tf, ctx, x\); it takes 2/);

    const syntax = refusal(diff('  const eta = tf.sum(phi, -1, true); // η_i: (B, H, T, 1)', '  const eta = tf.sum(phi, -1, true;'));
    assert.equal(syntax.kind, 'syntax');
    assert.match(syntax.message, /syntax error in the EVOLVE-BLOCK at block line \d+/);

    const ambiguous = refusal(diff('tf.transpose(', 'tf.transpose(tf.neg('));
    assert.equal(ambiguous.kind, 'ambiguous-search');
    assert.match(ambiguous.message, /matches 2 places in the block; include a neighbouring line/);

    assert.equal(refusal(diff('  const H = ctx.nHeads;', '  const H = ctx.nHeads;  ')).kind, 'unchanged');
    assert.equal(refusal('<<<<<<< SEARCH\n  const H = ctx.nHeads;\n=======\n  const H = 2;\n').kind, 'malformed-diff');
    assert.match(refusal('Here it comes:\n<<<<<<< SEARCH\n  const H', 'coefficient_dynamics', { truncatedAt: 16000 }).message, /stopped at the max_tokens limit of 16000/);
  });

  test('SEARCH text that differs only in indentation still applies; edits apply in order', () => {
    const reply = [diff('const H = ctx.nHeads;', '  const H = ctx.nHeads; // heads'), diff('  const H = ctx.nHeads; // heads', '  const H = ctx.nHeads; // H heads')].join('\n');
    const parsed = parseReply(reply, parent, 'coefficient_dynamics');
    assert.equal(parsed.edits, 2);
    assert.match(parsed.block, /const H = ctx\.nHeads; \/\/ H heads\n/);
  });

  test('a malformed reply and an edit outside the block are refused, and their reasons reach the next prompt', async () => {
    const p = provider();
    server.script(
      completion('Sigmoid attention with a bias of −ln T should scale better.', { prompt_tokens: 2000, completion_tokens: 50 }),
      completion(['Export a second name.', '<<<<<<< SEARCH', 'export { attention };', '=======', 'export { attention, attention as attn };', '>>>>>>> REPLACE'].join('\n')),
      completion(TEMPERATURE_DIFF),
    );
    const first = await rejection(p.propose(request()));
    assert.ok(first instanceof ReplyRefused);
    assert.equal(first.kind, 'no-code');
    // The refused reply's call is still counted: 2000·2 + 50·8 per million.
    assert.equal(first.usage?.calls.length, 1);
    assert.equal(first.usage?.costUsd, 0.0044);
    assert.match(first.reply ?? '', /Sigmoid attention/);

    const second = await rejection(p.propose(request()));
    assert.ok(second instanceof ReplyRefused);
    assert.equal(second.kind, 'outside-block');

    const attempts: AttemptFeedback[] = [
      { iteration: 4, attempt: 1, outcome: 'reply-refused', description: '', error: first.message },
      { iteration: 4, attempt: 2, outcome: 'reply-refused', description: 'Export a second name.', error: second.message },
    ];
    const proposal = await p.propose(request('coefficient_dynamics', { attempts }));
    emitted.push(proposal);
    const user = server.requests[2].body.messages[1].content;
    assert.ok(user.includes(first.message), 'the no-code reason is in the next prompt');
    assert.ok(user.includes(second.message), 'the outside-block reason is in the next prompt');
    assert.match(user, /Iteration 4, attempt 2: reply refused/);
  });

  test('the prompt holds parent, best, inspirations and only the last history_window attempts', () => {
    const inspiration = CATALOGUE.find((v) => v.id === 'cd-sigmoid')!;
    const attempts: AttemptFeedback[] = Array.from({ length: 7 }, (_, i) => ({
      iteration: 1 + i,
      attempt: 1,
      outcome: 'validation-failed' as const,
      description: `change ${i}`,
      error: `reason number ${i}`,
    }));
    const { system, user } = buildPrompt(
      request('coefficient_dynamics', {
        attempts,
        best: { block: inspiration.block, fitness: 0.07, iteration: 3, description: 'sigmoid attention' },
        inspirations: [{ block: inspiration.block, fitness: 0.07 }, { block: CATALOGUE.find((v) => v.id === 'cd-relu2')!.block, fitness: 0.06, description: 'ReLU²' }],
      }),
      { ...CD_CONFIG.prompt, historyWindow: 5 },
    );
    assert.match(system, /^You are a researcher/);
    assert.match(user, /Parent \(from iteration 0\): fitness 0\.0512 \(higher is better\); fit loss = 5\.91 − 0\.0512·ln N, R² 0\.97/);
    assert.match(user, /### Best so far \(iteration 3\): fitness 0\.07/);
    assert.match(user, /### Inspiration 1: fitness 0\.06/, 'the best is not repeated as an inspiration');
    assert.doesNotMatch(user, /reason number 1\b/);
    assert.match(user, /reason number 2[\s\S]*reason number 6/);
    assert.doesNotMatch(user, /\{[a-z_]+\}/, 'every template field is filled');
  });
});

describe('the client', () => {
  test('a 429 with Retry-After: 1 is retried after a second and succeeds', async () => {
    server.script(errorReply(429, 'Rate limit reached for requests', { headers: { 'retry-after': '1' } }), completion(TEMPERATURE_DIFF));
    const started = Date.now();
    const proposal = await provider().propose(request());
    const elapsed = Date.now() - started;
    emitted.push(proposal);
    assert.ok(elapsed >= 950, `waited ${elapsed} ms`);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests.map((r) => r.body.model), [PRIMARY, PRIMARY]);
    assert.deepEqual(proposal.usage?.calls.map((c) => c.ok), [false, true]);
    assert.match(proposal.usage!.calls[0].error!, /HTTP 429 Rate limit reached/);
    assert.ok(logLines.some((l) => /retry 1 of 2 in 1\.0 s/.test(l)));
  });

  test('a 401 fails fast with a clear, non-retryable error (one request, no fallback)', async () => {
    // A proxy that echoes the key it was given: the error must not carry it on.
    server.script(errorReply(401, `Incorrect API key provided: ${KEY}.`), completion(TEMPERATURE_DIFF));
    const err = await rejection(provider().propose(request()));
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LLM_AUTH');
    assert.equal(err.retryable, false);
    assert.equal(server.requests.length, 1);
    assert.match(err.message, /^LLM authentication failed at http:\/\/127\.0\.0\.1:\d+\/v1 for gpt-4\.1 \(HTTP 401 Incorrect API key provided: \[redacted\]\.\); check OPENAI_API_KEY/);
    assert.equal(err.usage.calls.length, 1);
  });

  test('400 validation errors and exhausted quota fail fast too', async () => {
    server.script(errorReply(400, "The model 'gpt-4.1' does not exist or you do not have access to it."));
    const bad = await rejection(provider().propose(request()));
    assert.ok(bad instanceof LlmError);
    assert.equal(bad.code, 'LLM_BAD_REQUEST');
    assert.equal(server.requests.length, 1);

    server.reset();
    server.script(errorReply(429, 'You exceeded your current quota.', { code: 'insufficient_quota' }));
    const quota = await rejection(provider().propose(request()));
    assert.ok(quota instanceof LlmError);
    assert.equal(quota.code, 'LLM_QUOTA');
    assert.equal(server.requests.length, 1);
  });

  test('the fallback model answers when the primary keeps returning 500', async () => {
    server.respondWith((req) =>
      req.body.model === PRIMARY ? errorReply(500, 'The server had an error', { headers: { 'retry-after-ms': '10' } }) : completion(TEMPERATURE_DIFF, { prompt_tokens: 1000, completion_tokens: 1000 }),
    );
    const proposal = await provider().propose(request());
    emitted.push(proposal);
    assert.deepEqual(server.requests.map((r) => r.body.model), [PRIMARY, PRIMARY, PRIMARY, FALLBACK]);
    assert.equal(proposal.provider, `openai:${FALLBACK}`);
    assert.deepEqual(proposal.usage?.calls.map((c) => [c.model, c.ok]), [[PRIMARY, false], [PRIMARY, false], [PRIMARY, false], [FALLBACK, true]]);
    assert.equal(proposal.usage?.costUsd, 0.002);
    assert.ok(logLines.some((l) => l.includes(`falling back to ${FALLBACK}`)));
  });

  test('a request timeout counts as a failure of that model and moves on to the fallback', async () => {
    server.respondWith((req) => (req.body.model === PRIMARY ? { ...completion(TEMPERATURE_DIFF), delayMs: 1500 } : completion(TEMPERATURE_DIFF)));
    const proposal = await provider({ timeoutS: 0.3, maxRetries: 0 }).propose(request());
    emitted.push(proposal);
    assert.equal(proposal.provider, `openai:${FALLBACK}`);
    assert.match(proposal.usage!.calls[0].error!, /timed out after 0\.3 s/);
  });

  test('when every model keeps failing the error is retryable and carries the failed calls', async () => {
    server.respondWith(() => errorReply(503, 'overloaded', { headers: { 'retry-after-ms': '5' } }));
    const err = await rejection(provider({ maxRetries: 1 }).propose(request()));
    assert.ok(err instanceof LlmError);
    assert.equal(err.code, 'LLM_UNAVAILABLE');
    assert.equal(err.retryable, true);
    assert.equal(err.usage.calls.length, 4);
    assert.match(err.message, /gpt-4\.1: gpt-4\.1 answered HTTP 503 overloaded \(2 requests\); gpt-4\.1-mini:/);
  });

  test('reasoning models get max_completion_tokens and no temperature', async () => {
    assert.ok(isReasoningModel('o4-mini') && isReasoningModel('gpt-5') && isReasoningModel('openai/o3') && isReasoningModel('gpt-5-mini'));
    assert.ok(!isReasoningModel('gpt-4.1') && !isReasoningModel('gpt-5-chat-latest') && !isReasoningModel('qwen2.5-coder:32b'));
    server.script(completion(TEMPERATURE_DIFF));
    const proposal = await provider({ primaryModel: 'o4-mini', reasoningEffort: 'low' }).propose(request());
    emitted.push(proposal);
    const body = server.requests[0].body;
    assert.equal(body.model, 'o4-mini');
    assert.equal(body.max_completion_tokens, 16000);
    assert.equal(body.reasoning_effort, 'low');
    assert.ok(!('temperature' in body) && !('max_tokens' in body));
  });

  test('a server that refuses temperature gets the request again without it, once', async () => {
    server.respondWith((req) =>
      'temperature' in req.body
        ? errorReply(400, "Unsupported value: 'temperature' does not support 0.8 with this model. Only the default (1) value is supported.", { param: 'temperature' })
        : completion(TEMPERATURE_DIFF),
    );
    const proposal = await provider({ primaryModel: 'house-model-v2' }).propose(request());
    emitted.push(proposal);
    assert.deepEqual(server.requests.map((r) => 'temperature' in r.body), [true, false]);
    assert.deepEqual(proposal.usage?.calls.map((c) => c.ok), [false, true]);
  });

  test('the API key appears in no error, proposal, usage, log line or provider', async () => {
    server.respondWith((req) => (req.body.model === PRIMARY ? errorReply(502, `bad gateway (upstream saw Authorization: Bearer ${KEY})`, { headers: { 'retry-after-ms': '1' } }) : completion(TEMPERATURE_DIFF)));
    const p = provider();
    emitted.push(await p.propose(request()), p, util.inspect(p, { depth: 5 }));
    const text = JSON.stringify(emitted.map((e) => (e instanceof Error ? { ...e, message: e.message } : e))) + logLines.join('\n');
    assert.ok(emitted.length > 10, 'earlier tests recorded what they saw');
    assert.ok(!text.includes(KEY), 'the key leaked');
    assert.ok(!text.includes(KEY.slice(3)), 'part of the key leaked');
    assert.equal(scrubSecrets(`key ${KEY} and Bearer abc.def and https://u:pw@host/v1`, [KEY]), 'key [redacted] and Bearer [redacted] and https://[redacted]@host/v1');
  });
});

describe('provider choice', () => {
  const settings = { framework: 'coefficient_dynamics' as const, mutation: { provider: 'offline' as const, maxAttempts: 3 }, llm: CD_CONFIG.llm, prompt: CD_CONFIG.prompt };

  test('OpenAI with a key or a base URL, else the offline catalogue; files when asked; one-line notices without secrets', () => {
    const none = chooseProvider(settings, {});
    assert.ok(none.provider instanceof OfflineCatalogueProvider);
    assert.equal(none.notice, 'mutation: offline catalogue of published attention variants (no OPENAI_API_KEY or OPENAI_BASE_URL set)');

    const keyed = chooseProvider(settings, { OPENAI_API_KEY: KEY });
    assert.ok(keyed.provider instanceof OpenAiProvider);
    assert.equal(keyed.notice, 'mutation: OpenAI-compatible API at https://api.openai.com/v1 (primary gpt-5, fallback gpt-4.1; key from OPENAI_API_KEY)');

    const local = chooseProvider(settings, { OPENAI_BASE_URL: 'http://user:hunter22@127.0.0.1:8000/v1/' });
    assert.ok(local.provider instanceof OpenAiProvider);
    assert.equal(local.notice, 'mutation: OpenAI-compatible API at http://127.0.0.1:8000/v1 (primary gpt-5, fallback gpt-4.1; no API key)');

    const control = chooseProvider({ ...settings, llm: { ...CD_CONFIG.llm, provider: 'offline' } }, { OPENAI_API_KEY: KEY });
    assert.ok(control.provider instanceof OfflineCatalogueProvider);
    assert.match(control.notice, /llm\.provider is offline/);

    assert.throws(() => chooseProvider({ ...settings, llm: { ...CD_CONFIG.llm, provider: 'openai' } }, {}), /neither OPENAI_API_KEY nor OPENAI_BASE_URL is set/);

    const files = chooseProvider({ ...settings, mutation: { provider: 'files', dir: '/tmp/blocks', maxAttempts: 3 } }, { OPENAI_API_KEY: KEY });
    assert.equal(files.provider.name, 'files');
    assert.equal(files.notice, 'mutation: replaying candidate blocks from /tmp/blocks');

    // A run built without a config takes the LLM settings of configs/<framework>.yaml.
    // Settings are resolved when a run starts; an activity never reads a config file.
    const bare = chooseProvider({ framework: 'matrix_mixer', mutation: { provider: 'offline', maxAttempts: 3 } }, { OPENAI_API_KEY: KEY });
    assert.ok(bare.provider instanceof OfflineCatalogueProvider);
    assert.match(bare.notice, /the run has no LLM settings/);
    assert.ok(![none, keyed, local, control, files, bare].some((c) => c.notice.includes(KEY) || c.notice.includes('hunter22')));
  });
});

describe('the reply store', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-replies-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  const exchange = { runId: 'evo-test-replies', iteration: 3, attempt: 1 };
  /** A provider in a fresh process, as far as the store is concerned: nothing in memory carries over. */
  const withStore = (over: Partial<LlmSettings> = {}) =>
    new OpenAiProvider({ llm: llm(over), prompt: CD_CONFIG.prompt, env: { OPENAI_API_KEY: KEY }, log: (line) => logLines.push(line), replies: new ReplyStore(root) });

  test('a reply is stored as it arrives; the same request again is answered from the store, not the API, and counted once', async () => {
    server.script(completion(TEMPERATURE_DIFF, { prompt_tokens: 3000, completion_tokens: 500 }), completion(TEMPERATURE_DIFF));
    const first = await withStore().propose(request('coefficient_dynamics', { exchange }));
    assert.equal(server.requests.length, 1);
    const [call] = first.usage!.calls;
    assert.equal(call.ok, true);
    assert.match(call.replyKey ?? '', /^[0-9a-f]{32}$/);
    assert.ok(!call.reused);
    const file = path.join(root, exchange.runId, `${call.replyKey}.json`);
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredReply;
    assert.deepEqual(stored.request, server.requests[0].body, 'the full request body, as sent');
    assert.equal(stored.text, TEMPERATURE_DIFF);
    assert.deepEqual([stored.runId, stored.iteration, stored.attempt, stored.model], [exchange.runId, 3, 1, PRIMARY]);
    assert.ok(!JSON.stringify(stored).includes(KEY), 'no credential in the store');
    assert.deepEqual(fs.readdirSync(path.join(root, exchange.runId)), [`${call.replyKey}.json`], 'written atomically: no temp file left');

    // The step again (its worker died after the reply arrived; `evo retry` ran its iteration again).
    const again = await withStore().propose(request('coefficient_dynamics', { exchange }));
    assert.equal(server.requests.length, 1, 'not requested again');
    assert.deepEqual([again.block, again.description, again.provider], [first.block, first.description, first.provider]);
    assert.deepEqual(again.usage!.calls, [{ ...call, reused: true }], 'the call that fetched it: same tokens, cost and key, marked reused');
    assert.ok(logLines.some((l) => l.includes(`taken from the reply store (${call.replyKey})`)));

    // Each delivery counts the call, and the run counts it once: the cost was paid once.
    const [t1, t2] = [totalsOf(first.usage), totalsOf(again.usage)];
    assert.deepEqual([t1.calls, t2.calls, t1.costUsd, t2.costUsd], [1, 1, 0.01, 0.01]);
    const run = addTotals(addTotals(emptyTotals(), t1), t2);
    assert.deepEqual([run.calls, run.promptTokens, run.completionTokens, run.costUsd, run.byModel[PRIMARY].calls], [1, 3000, 500, 0.01, 1]);
    assert.deepEqual(Object.keys(run.replies ?? {}), [call.replyKey]);

    // What determines the request is the key: another attempt, iteration or run, or another body, asks again.
    for (const other of [{ ...exchange, attempt: 2 }, { ...exchange, iteration: 4 }, { ...exchange, runId: 'evo-test-other' }]) {
      server.script(completion(TEMPERATURE_DIFF));
      await withStore().propose(request('coefficient_dynamics', { exchange: other }));
    }
    server.script(completion(TEMPERATURE_DIFF));
    await withStore({ temperature: 0.5 }).propose(request('coefficient_dynamics', { exchange }));
    assert.equal(server.requests.length, 5);
    // Without an exchange nothing is stored or reused.
    server.script(completion(TEMPERATURE_DIFF), completion(TEMPERATURE_DIFF));
    await withStore().propose(request());
    const plain = await withStore().propose(request());
    assert.equal(server.requests.length, 7);
    assert.equal(plain.usage!.calls[0].replyKey, undefined);
  });

  test("an exchange that ended on the fallback model, or in a refused reply, ends the same way again without a request", async () => {
    server.respondWith((req) => (req.body.model === PRIMARY ? errorReply(503, 'overloaded', { headers: { 'retry-after-ms': '1' } }) : completion(TEMPERATURE_DIFF)));
    const scope = { ...exchange, iteration: 7 };
    const first = await withStore({ maxRetries: 0 }).propose(request('coefficient_dynamics', { exchange: scope }));
    assert.deepEqual(server.requests.map((r) => r.body.model), [PRIMARY, FALLBACK]);
    const again = await withStore({ maxRetries: 0 }).propose(request('coefficient_dynamics', { exchange: scope }));
    assert.equal(server.requests.length, 2, 'neither model is asked again');
    assert.equal(again.provider, `openai:${FALLBACK}`);
    assert.deepEqual(again.usage!.calls.map((c) => [c.model, c.reused]), [[FALLBACK, true]], 'the failed primary call is not repeated either');
    assert.equal(again.block, first.block);

    server.reset();
    server.script(completion('No code today.'));
    const refusedScope = { ...exchange, iteration: 8 };
    const refused = await rejection(withStore().propose(request('coefficient_dynamics', { exchange: refusedScope })));
    const refusedAgain = await rejection(withStore().propose(request('coefficient_dynamics', { exchange: refusedScope })));
    assert.ok(refused instanceof ReplyRefused && refusedAgain instanceof ReplyRefused);
    assert.equal(refusedAgain.message, refused.message);
    assert.equal(server.requests.length, 1);
  });

  test('`evo gc` keeps the replies of runs that have an archive and removes those of runs that do not', () => {
    const saved = { home: process.env.EVOSCALE_HOME, runs: process.env.EVOSCALE_RUNS_DIR };
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-replies-gc-'));
    process.env.EVOSCALE_HOME = path.join(state, 'home');
    process.env.EVOSCALE_RUNS_DIR = path.join(state, 'runs');
    try {
      const store = new ReplyStore();
      const call: LlmCall = { model: PRIMARY, promptTokens: 1, completionTokens: 1, costUsd: 0, ok: true, durationMs: 1 };
      for (const runId of ['evo-kept', 'evo-deleted']) store.save({ runId, iteration: 1, attempt: 1 }, PRIMARY, { model: PRIMARY }, { text: 'x', finishReason: 'stop' }, call);
      fs.mkdirSync(path.join(process.env.EVOSCALE_RUNS_DIR, 'evo-kept'), { recursive: true });
      const r = collectGarbage();
      assert.deepEqual([r.replies, r.keptReplies], [1, 1]);
      assert.ok(r.bytes > 0);
      assert.deepEqual(store.runs(), ['evo-kept']);
      assert.ok(store.load({ runId: 'evo-kept', iteration: 1, attempt: 1 }, PRIMARY, { model: PRIMARY }));
    } finally {
      process.env.EVOSCALE_HOME = saved.home;
      process.env.EVOSCALE_RUNS_DIR = saved.runs;
      if (saved.home === undefined) delete process.env.EVOSCALE_HOME;
      if (saved.runs === undefined) delete process.env.EVOSCALE_RUNS_DIR;
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('ledger', () => {
  const call = (model: string, promptTokens: number, completionTokens: number, costUsd: number, ok = true): LlmCall => ({ model, promptTokens, completionTokens, costUsd, ok, durationMs: 1 });

  test('usage adds up across calls, attempts, iterations and the run; the budget stops mutation', () => {
    const attempt1 = usageFromCalls([call('a', 0, 0, 0, false), call('a', 1000, 200, 0.0036)]);
    const attempt2 = usageFromCalls([call('b', 500, 100, 0.0001)]);
    const iteration1 = mergeUsage(attempt1, attempt2, undefined);
    assert.deepEqual([iteration1.calls.length, iteration1.promptTokens, iteration1.completionTokens, iteration1.costUsd], [3, 1500, 300, 0.0037]);

    const t1 = totalsOf(iteration1);
    assert.deepEqual(t1, {
      calls: 3,
      failedCalls: 1,
      promptTokens: 1500,
      completionTokens: 300,
      costUsd: 0.0037,
      byModel: {
        a: { calls: 2, failedCalls: 1, promptTokens: 1000, completionTokens: 200, costUsd: 0.0036 },
        b: { calls: 1, failedCalls: 0, promptTokens: 500, completionTokens: 100, costUsd: 0.0001 },
      },
    });
    const t2 = totalsOf(usageFromCalls(Array.from({ length: 10 }, () => call('a', 100, 10, 0.1))));
    const run = addTotals(t1, t2, undefined);
    assert.deepEqual([run.calls, run.failedCalls, run.promptTokens, run.completionTokens, run.costUsd], [13, 1, 2500, 400, 1.0037]);
    assert.equal(run.byModel.a.calls, 12);
    assert.equal(formatTotals(run), '13 LLM calls (1 failed), 2500 prompt + 400 completion tokens, $1.0037');

    assert.equal(budgetExceeded(run, null), false);
    assert.equal(budgetExceeded(run, undefined), false);
    assert.equal(budgetExceeded(run, 2), false);
    assert.equal(budgetExceeded(run, 1.0037), true);
    assert.equal(budgetExceeded(run, 1), true);
    assert.equal(budgetExceeded(addTotals(), 0), true);
    assert.match(budgetMessage(run, 1), /^LLM budget spent: \$1\.0037 of \$1\.00 \(llm\.budget_usd\)/);
  });
});
