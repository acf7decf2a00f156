// The durable reply store: every LLM reply the propose stage receives is written, atomically and before
// anything else happens with it, under <state>/cache/llm-replies/<runId>/<key>.json, where the key is a
// content hash of what determined the request (run, iteration, attempt, model, the full request body).
// A later identical request — the propose activity retried after its worker died, an iteration run again
// by `evo retry` or after `evo resume` — reads the reply there instead of asking (and paying) again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { readJsonIfExists, writeJsonAtomic } from '../../core/atomic-file';
import { cacheDir } from '../../core/paths';
import type { ExchangeScope, LlmCall } from '../provider';

const FORMAT = 'evoscale-llm-reply/1';

/** The cache folder of the store (one subfolder per run). */
export function replyStoreDir(): string {
  return cacheDir('llm-replies');
}

/** Which exchange of a run a request belongs to: the run, its iteration and the attempt within the iteration (1-based). */
export type ReplyScope = ExchangeScope;

/** What a finished request answered, as the provider uses it. */
export interface ReplyContent {
  text: string;
  finishReason: string | null;
}

export interface StoredReply extends ReplyContent {
  format: typeof FORMAT;
  key: string;
  runId: string;
  iteration: number;
  attempt: number;
  model: string;
  /** The request body exactly as it was sent (no credentials: those travel in headers). */
  request: unknown;
  /** The call as the ledger counted it when the reply arrived: tokens, cost, duration. */
  call: LlmCall;
  storedAt: string;
}

/** JSON with object keys sorted, so the same request always hashes the same whatever order built it. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The content hash of one request: 32 hex digits of SHA-256 over the scope, the model and the whole body. */
export function replyKey(scope: ReplyScope, model: string, body: unknown): string {
  const what = canonical({ format: FORMAT, runId: scope.runId, iteration: scope.iteration, attempt: scope.attempt, model, body });
  return createHash('sha256').update(what).digest('hex').slice(0, 32);
}

/** The store's folder for a run (run ids are folder names already: see archive/runDir). */
function runFolder(root: string, runId: string): string {
  if (!/^[\w.-]+$/.test(runId)) throw new Error(`run id "${runId}" cannot name a folder`);
  return path.join(root, runId);
}

export class ReplyStore {
  constructor(readonly root: string = replyStoreDir()) {}

  path(scope: ReplyScope, key: string): string {
    return path.join(runFolder(this.root, scope.runId), `${key}.json`);
  }

  /**
   * The stored reply to exactly this request, or undefined. A file that is not a reply to this very
   * request (another format, another body under the same name) is not used.
   */
  load(scope: ReplyScope, model: string, body: unknown): StoredReply | undefined {
    const key = replyKey(scope, model, body);
    let stored: StoredReply | undefined;
    try {
      stored = readJsonIfExists<StoredReply>(this.path(scope, key));
    } catch {
      return undefined; // unreadable: ask again (writes are atomic, so this is not a half-written reply)
    }
    if (!stored || stored.format !== FORMAT || stored.key !== key || canonical(stored.request) !== canonical(body)) return undefined;
    if (typeof stored.text !== 'string' || !stored.call || stored.call.ok !== true) return undefined;
    return stored;
  }

  /** Writes the reply atomically (temp file, fsync, rename) and returns its key. */
  save(scope: ReplyScope, model: string, body: unknown, reply: ReplyContent, call: LlmCall): string {
    const key = replyKey(scope, model, body);
    const stored: StoredReply = {
      format: FORMAT,
      key,
      runId: scope.runId,
      iteration: scope.iteration,
      attempt: scope.attempt,
      model,
      text: reply.text,
      finishReason: reply.finishReason,
      request: body,
      call: { ...call, replyKey: key },
      storedAt: new Date().toISOString(),
    };
    writeJsonAtomic(this.path(scope, key), stored);
    return key;
  }

  /** Run ids that have replies stored. */
  runs(): string[] {
    try {
      return fs.readdirSync(this.root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return [];
    }
  }
}
