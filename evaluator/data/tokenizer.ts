// Byte-level BPE tokenizers: trained once per corpus, cut to the requested vocabulary size, then
// used to encode corpora and to encode/decode text for reports.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Tokenizer } from 'tokenizers';
import { EvoError } from '../../core/errors';
import type { BpeTrainingRequest } from './train-bpe';

export const BYTE_ALPHABET_SIZE = 256;
/** The tokenizers binding trains with BpeTrainer's default vocab_size and exposes no option to change it. */
export const TRAINER_VOCAB_LIMIT = 30000;
/** Largest vocabulary any corpus can reach: the trainer's limit minus at least one seen symbol, plus all 256 bytes. */
export const MAX_VOCAB_SIZE = TRAINER_VOCAB_LIMIT - 1 + BYTE_ALPHABET_SIZE;

/** The parts of a saved tokenizer.json this module reads or rewrites. */
export interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: [string, string][] };
  decoder: unknown;
  [section: string]: unknown;
}

/** Trains in a child process so the trainer's progress output never reaches our stdout. */
export function trainByteLevelBpe(files: string[], trainedTokenizerPath: string): Promise<void> {
  const request: BpeTrainingRequest = { files, trainedTokenizerPath };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'train-bpe.js')], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const lastLine = stderr.trim().split('\n').pop() ?? '';
      reject(new Error(`BPE training failed (${signal ?? `exit code ${code}`}): ${lastLine}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/**
 * A tokenizer of exactly vocabSize tokens: all 256 byte symbols (id = byte value), then the
 * trained merges in the order they were learned until the vocabulary is full. BPE learns merges
 * greedily, so this prefix is what training with that vocabulary size would have produced. The
 * trainer's own base alphabet holds only the symbols it saw, and bytes outside it would vanish
 * silently on encode; starting from every byte makes any text encode and decode losslessly.
 */
export function cutToVocabulary(trained: TokenizerJson, vocabSize: number): TokenizerJson {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((symbol, byte) => (vocab[symbol] = byte));
  let size = BYTE_ALPHABET_SIZE;
  const merges: [string, string][] = [];
  for (const [left, right] of trained.model.merges) {
    if (!(left in vocab) || !(right in vocab)) continue;
    const merged = left + right;
    if (!(merged in vocab)) {
      if (size === vocabSize) continue;
      vocab[merged] = size++;
    }
    merges.push([left, right]);
  }
  if (size < vocabSize) {
    const reachedTrainerLimit = Object.keys(trained.model.vocab).length >= TRAINER_VOCAB_LIMIT;
    throw new EvoError(
      reachedTrainerLimit
        ? `vocabulary size ${vocabSize} is larger than this corpus supports (BPE learned ${size} tokens, ` +
            `the trainer's limit of ${TRAINER_VOCAB_LIMIT} plus the bytes the corpus lacks); lower data.vocab_size`
        : `vocabulary size ${vocabSize} is larger than this corpus supports (BPE learned ${size} tokens); ` +
            'lower data.vocab_size or add text',
    );
  }
  return {
    ...trained,
    model: { ...trained.model, vocab, merges },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  };
}

/** Encodes text of any length; a long text is encoded in pieces, a few at a time, to bound memory. */
export async function encodeWithTokenizer(tokenizer: Tokenizer, text: string): Promise<Int32Array> {
  const pieces = splitAtWordEnds(text, 4096);
  const encoded: number[][] = [];
  for (let i = 0; i < pieces.length; i += 256) {
    const encodings = await tokenizer.encodeBatch(pieces.slice(i, i + 256));
    for (const encoding of encodings) encoded.push(encoding.getIds());
  }
  const ids = new Int32Array(encoded.reduce((total, piece) => total + piece.length, 0));
  let offset = 0;
  for (const piece of encoded) {
    ids.set(piece, offset);
    offset += piece.length;
  }
  return ids;
}

export async function encodeText(tokenizerPath: string, text: string): Promise<number[]> {
  return Array.from(await encodeWithTokenizer(Tokenizer.fromFile(tokenizerPath), text));
}

export function decodeTokens(tokenizerPath: string, ids: ArrayLike<number>): string {
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const decoder = tokenizer.getDecoder();
  if (!decoder) throw new EvoError(`tokenizer ${tokenizerPath} has no decoder`);
  const tokenOf: string[] = [];
  for (const [token, id] of Object.entries(tokenizer.getVocab())) tokenOf[id] = token;
  const tokens = Array.from(ids, (id) => {
    const token = tokenOf[id];
    if (token === undefined) throw new EvoError(`token id ${id} is outside the vocabulary of ${tokenizerPath}`);
    return token;
  });
  return decoder.decode(tokens);
}

/**
 * Pieces of about targetChars, cut only between an ASCII letter and a newline. The byte-level
 * pre-tokenizer's pattern never joins a letter to the whitespace after it and looks only ahead,
 * so encoding the pieces gives exactly the ids of encoding the whole text.
 */
function splitAtWordEnds(text: string, targetChars: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let cut = Math.min(start + targetChars, text.length);
    while (cut < text.length && !(text.charCodeAt(cut) === 0x0a && isAsciiLetter(text.charCodeAt(cut - 1)))) cut++;
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  return pieces;
}

function isAsciiLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** GPT-2's printable stand-in for each byte value, the symbols byte-level BPE works on. */
function byteLevelAlphabet(): string[] {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let nextStandIn = 256;
  return Array.from({ length: BYTE_ALPHABET_SIZE }, (_, byte) =>
    String.fromCodePoint(printable(byte) ? byte : nextStandIn++),
  );
}
