// The child side of the sandbox: reads the task input from stdin, runs the handler, and reports progress
// and the outcome as JSON lines on fd 3. The parent bounds, parses and validates every line it receives.
import * as fs from 'node:fs';
import { oneLine, ProgramRejected } from '../core/errors';

/** The file descriptor the child writes its messages to (stdio index 3 in the parent's spawn). */
export const MESSAGE_FD = 3;

/** What the child sends: one JSON object per line. */
export type ChildMessage =
  | { t: 'progress'; m: unknown }
  | { t: 'result'; v: unknown }
  | { t: 'error'; message: string; check?: string };

export interface SandboxTaskContext {
  /** Sends a JSON-serialisable progress message to the parent's onMessage. */
  progress(msg: unknown): void;
}

const MAX_ERROR_CHARS = 2000;

// Taken when this module loads, before any candidate code runs: a block that later patches
// JSON, Buffer or fs cannot change what this process reports.
const stringify = JSON.stringify;
const parseJson = JSON.parse;
const bufferFrom = Buffer.from.bind(Buffer);
const writeSync = fs.writeSync;
const readFileSync = fs.readFileSync;
const exit = process.exit.bind(process);
/** The parent's per-task nonce; every message line starts with it (set before the handler runs). */
let nonce = '';

function encode(msg: ChildMessage): Buffer {
  // The nonce is joined outside the serialised object, so no toJSON hook ever sees it.
  return bufferFrom(nonce + ' ' + stringify(msg) + '\n', 'utf8');
}

function writeAll(line: Buffer): void {
  // fd 3 is the blocking end of a socket pair: writeSync returns once the parent has taken the bytes.
  for (let off = 0; off < line.length; ) off += writeSync(MESSAGE_FD, line, off);
}

function errorMessage(err: unknown): ChildMessage {
  const message = oneLine(err).slice(0, MAX_ERROR_CHARS);
  return err instanceof ProgramRejected ? { t: 'error', message, check: err.check } : { t: 'error', message };
}

/**
 * Replaces the constructor reachable from every function (`f.constructor`, and its async and generator
 * variants) with one that throws, so untrusted code that slips a computed `constructor` lookup past the
 * static checks still cannot turn strings into code. The global `Function`, which compileAttention uses,
 * stays intact; the stand-in is still a function because libraries test `f.constructor` for truthiness.
 */
export function sealFunctionConstructors(): void {
  const disabled = function codeGenerationDisabled(): never {
    throw new Error('code generation from strings is disabled in the sandbox');
  };
  const samples = [function () {}, async function () {}, function* () {}, async function* () {}];
  for (const f of samples) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: disabled, writable: false, configurable: false });
  }
}

/**
 * Serves one task: input from stdin (JSON), `handler`'s value back as the result, or its error as a
 * task error (a ProgramRejected keeps its `check`). The process exits once the outcome is sent.
 */
export function serveSandboxedTask<I, O>(handler: (input: I, ctx: SandboxTaskContext) => Promise<O>): void {
  let finished = false;
  const finish = (msg: ChildMessage, code: number): void => {
    if (finished) return;
    finished = true;
    let line: Buffer;
    try {
      line = encode(msg);
    } catch (err) {
      // A cycle, a BigInt or a throwing toJSON: say so rather than leave the parent guessing.
      line = encode({ t: 'error', message: `the task's result is not JSON-serialisable: ${oneLine(err)}` });
      code = 1;
    }
    try {
      writeAll(line);
    } finally {
      exit(code);
    }
  };
  const fail = (err: unknown): void => finish(errorMessage(err), 1);
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);

  let input: I;
  try {
    const envelope = parseJson(readFileSync(0, 'utf8')) as { nonce: string; input: I };
    nonce = String(envelope.nonce);
    input = envelope.input;
  } catch (err) {
    fail(new Error(`could not read the task input: ${oneLine(err)}`));
    return;
  }
  const ctx: SandboxTaskContext = {
    progress: (m) => {
      if (!finished) writeAll(encode({ t: 'progress', m }));
    },
  };
  Promise.resolve()
    .then(() => handler(input, ctx))
    .then((v) => finish({ t: 'result', v }, 0), fail);
}
