// An OpenAI-compatible chat-completions server on 127.0.0.1 for tests: replies are scripted (status,
// headers such as Retry-After, delays, content with usage) and every request it receives is recorded.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body. */
  body: {
    model: string;
    messages: { role: string; content: string }[];
    temperature?: number;
    max_tokens?: number;
    max_completion_tokens?: number;
    reasoning_effort?: string;
    [key: string]: unknown;
  };
}

export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  /** A raw JSON body; without it a successful completion is built from `content` and `usage`. */
  body?: unknown;
  content?: string;
  finishReason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** Wait this long before answering (to provoke client timeouts). */
  delayMs?: number;
}

/** A reply for the given request, or undefined to take the next one from the queue. */
export type Responder = (req: RecordedRequest, index: number) => ScriptedReply | undefined;

export function completion(content: string, usage = { prompt_tokens: 1000, completion_tokens: 200 }, finishReason = 'stop'): ScriptedReply {
  return { content, usage, finishReason };
}

export function errorReply(status: number, message: string, extra: { headers?: Record<string, string>; code?: string; param?: string } = {}): ScriptedReply {
  return {
    status,
    headers: extra.headers,
    body: { error: { message, type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', code: extra.code ?? null, param: extra.param ?? null } },
  };
}

export class FakeOpenAi {
  readonly requests: RecordedRequest[] = [];
  private queue: ScriptedReply[] = [];
  private responder: Responder | undefined;
  private server: http.Server | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();

  /** Queue replies, answered in order. */
  script(...replies: ScriptedReply[]): this {
    this.queue.push(...replies);
    return this;
  }

  /** Answer by request (e.g. by model name) before falling back to the queue. */
  respondWith(responder: Responder | undefined): this {
    this.responder = responder;
    return this;
  }

  reset(): void {
    this.requests.length = 0;
    this.queue = [];
    this.responder = undefined;
  }

  /** Starts on a free port; resolves to the base URL (…/v1). */
  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/v1`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : {} };
    const index = this.requests.length;
    this.requests.push(recorded);
    if (req.method !== 'POST' || !recorded.path.endsWith('/chat/completions')) {
      this.send(res, { status: 404, body: { error: { message: `no route ${req.method} ${recorded.path}` } } });
      return;
    }
    const reply = this.responder?.(recorded, index) ?? this.queue.shift() ?? errorReply(500, 'the test script has no reply left');
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    if (res.destroyed) return;
    this.send(res, reply, recorded.body.model);
  }

  private send(res: http.ServerResponse, reply: ScriptedReply, model = 'unknown'): void {
    const body =
      reply.body ??
      {
        id: `chatcmpl-${this.requests.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply.content ?? '' }, finish_reason: reply.finishReason ?? 'stop' }],
        usage: reply.usage
          ? { ...reply.usage, total_tokens: reply.usage.prompt_tokens + reply.usage.completion_tokens }
          : undefined,
      };
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    res.end(JSON.stringify(body));
  }
}

/** A reply with one SEARCH/REPLACE edit of the coefficient-dynamics baseline: a learned per-head temperature. */
export const TEMPERATURE_DIFF = [
  'Learned per-head temperature: each head can sharpen its coefficients as the model grows.',
  '',
  '```diff',
  '<<<<<<< SEARCH',
  '  const h = tf.mul(k, 1 / Math.sqrt(d)); // (B, H, T, d)',
  '=======',
  "  const logTau = ctx.param('logTau', [1, H, 1, 1], 'zeros'); // per-head log temperature",
  '  const h = tf.mul(tf.mul(k, 1 / Math.sqrt(d)), tf.exp(logTau)); // (B, H, T, d)',
  '>>>>>>> REPLACE',
  '```',
].join('\n');
