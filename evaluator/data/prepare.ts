// prepareData: corpus → byte-level BPE tokenizer of the configured size → train/validation token
// files, or nanoGPT .bin token ids → the same token files as they are; cached under a content hash
// so a prepared corpus is reused, never rebuilt.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from 'tokenizers';
import { readJsonIfExists, writeJsonAtomic } from '../../core/atomic-file';
import { EvoError } from '../../core/errors';
import { cacheDir } from '../../core/paths';
import { Corpus, CorpusFile, corpusText, readCorpus } from './corpus';
import { checkCopySegments, mixCopySegments, rarestIds, type CopySegments } from './copy-segments';
import { loadTokens, maxTokensPerFile, tokenBytesFor, writeTokenFile, writeTokenFileFromUint16 } from './token-file';
import {
  BYTE_ALPHABET_SIZE,
  MAX_VOCAB_SIZE,
  TRAINER_VOCAB_LIMIT,
  TokenizerJson,
  cutToVocabulary,
  encodeWithTokenizer,
  trainByteLevelBpe,
} from './tokenizer';
import type { DataSpec, PreparedData } from '../../contract';
export type { DataSpec, PreparedData };

export { loadTokens } from './token-file';
export { decodeTokens, encodeText } from './tokenizer';

/** Bump when the files or their meaning change, so old cache entries are no longer found. */
const DATA_FORMAT_VERSION = 1;
const TOKENIZER_FILE = 'tokenizer.json';
const TRAIN_FILE = 'train.tokens';
const VAL_FILE = 'val.tokens';
const META_FILE = 'meta.json';
const BUILD_PREFIX = '.build-';
const ABANDONED_BUILD_AGE_MS = 24 * 3600 * 1000;
/** .bin files are hashed and copied this many bytes at a time (even, so a chunk holds whole ids). */
const BIN_CHUNK_BYTES = 16 << 20;

interface DataMeta {
  format: number;
  /** Absent in entries written before pre-tokenised data was accepted: those are all BPE. */
  tokenizer?: PreparedData['tokenizer'];
  /** A copy-segment entry's plain corpus (`evo gc` keeps it with the entry); absent in plain entries and older derived ones. */
  derivedFrom?: string;
  hash: string;
  vocabSize: number;
  valFraction: number;
  tokenBytes: 2 | 4;
  trainTokens: number;
  valTokens: number;
  corpusFiles: number;
  corpusBytes: number;
}

export async function prepareData(spec: DataSpec): Promise<PreparedData> {
  const corpus = readCorpus(spec.corpus);
  checkDataSpec(spec, corpus.kind);
  const hash = dataHash(corpus, spec);
  const dir = cacheDir('data', hash);
  const prepared =
    readPrepared(dir) ??
    (await buildEntry(hash, dir, (buildDir) =>
      corpus.kind === 'text' ? buildFromText(corpus.files, spec, hash, buildDir) : buildFromTokens(corpus, spec, hash, buildDir),
    ));
  return spec.copySegments ? withCopySegments(prepared, spec.copySegments) : prepared;
}

/** The prepared corpus with copying segments mixed into both splits: an entry of its own, derived from the plain one. */
async function withCopySegments(plain: PreparedData, copy: CopySegments): Promise<PreparedData> {
  const hash = createHash('sha256').update(JSON.stringify({ plain: plain.hash, copySegments: copy, symbols: 'rarest' })).digest('hex').slice(0, 16);
  const dir = cacheDir('data', hash);
  return (
    readPrepared(dir) ??
    (await buildEntry(hash, dir, (buildDir) => {
      const meta = readJsonIfExists<DataMeta>(path.join(plain.dir, META_FILE))!;
      if (plain.tokenizerPath) fs.copyFileSync(plain.tokenizerPath, path.join(buildDir, TOKENIZER_FILE));
      // Different PRNG streams for the splits, so validation never repeats a training segment.
      const plainTrain = loadTokens(plain.trainPath);
      const symbols = rarestIds(plainTrain, plain.vocabSize, copy.symbols);
      const train = mixCopySegments(plainTrain, copy, symbols, 1);
      const val = mixCopySegments(loadTokens(plain.valPath), copy, symbols, 2);
      writeTokenFile(path.join(buildDir, TRAIN_FILE), train, plain.vocabSize);
      writeTokenFile(path.join(buildDir, VAL_FILE), val, plain.vocabSize);
      return { ...meta, hash, derivedFrom: plain.hash, trainTokens: train.length, valTokens: val.length };
    }))
  );
}

function checkDataSpec({ vocabSize, valFraction, copySegments }: DataSpec, kind: Corpus['kind']): void {
  if (copySegments) checkCopySegments(copySegments, vocabSize);
  if (!Number.isInteger(vocabSize)) throw new EvoError(`data.vocab_size must be a whole number, got ${vocabSize}`);
  if (kind === 'pretokenized' && vocabSize < 1) throw new EvoError(`data.vocab_size must be positive, got ${vocabSize}`);
  // The BPE's bounds; pre-tokenised data only needs a vocabulary above its largest id, checked as it is read.
  if (kind === 'text' && vocabSize < BYTE_ALPHABET_SIZE) {
    throw new EvoError(
      `vocabulary size ${vocabSize} is below the ${BYTE_ALPHABET_SIZE} byte symbols a byte-level BPE needs; raise data.vocab_size`,
    );
  }
  if (kind === 'text' && vocabSize > MAX_VOCAB_SIZE) {
    throw new EvoError(
      `vocabulary size ${vocabSize} is larger than any corpus supports (the BPE trainer stops at ${TRAINER_VOCAB_LIMIT} ` +
        `tokens, at most ${MAX_VOCAB_SIZE} with all bytes); lower data.vocab_size`,
    );
  }
  if (!(valFraction > 0 && valFraction <= 0.5)) {
    throw new EvoError(`data.val_fraction must be in (0, 0.5], got ${valFraction}`);
  }
}

function dataHash(corpus: Corpus, { vocabSize, valFraction }: DataSpec): string {
  const hash = createHash('sha256');
  if (corpus.kind === 'text') {
    // As before .jsonl and .bin were accepted, so entries of .txt corpora are still found.
    hash.update(JSON.stringify({ format: DATA_FORMAT_VERSION, vocabSize, valFraction }));
    // Each file's length goes in too: the tokenizer trains file by file, so the boundaries matter.
    // A .jsonl file is marked, since the same bytes read as text are another corpus.
    for (const file of corpus.files) {
      hash.update(`\n${file.format === 'jsonl' ? 'jsonl:' : ''}${file.bytes.length}\n`);
      hash.update(file.bytes);
    }
  } else {
    const layout = corpus.val === null ? 'single .bin' : 'train.bin and val.bin';
    hash.update(JSON.stringify({ format: DATA_FORMAT_VERSION, tokenizer: 'pretokenized', layout, vocabSize, valFraction }));
    for (const file of corpus.val === null ? [corpus.train] : [corpus.train, corpus.val]) {
      const tokens = binTokens(file);
      hash.update(`\n${2 * tokens}\n`);
      for (const chunk of binChunks(file, 0, tokens)) hash.update(chunk);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * A complete cache entry, or undefined: entries appear only by renaming a finished build into place.
 * Reading one marks it used now (its folder's time; no file changes), so `evo gc` spares it until a run records it.
 */
function readPrepared(dir: string): PreparedData | undefined {
  const meta = readJsonIfExists<DataMeta>(path.join(dir, META_FILE));
  if (!meta) return undefined;
  markUsed(dir);
  const tokenizer = meta.tokenizer ?? 'bpe';
  return {
    hash: meta.hash,
    dir,
    vocabSize: meta.vocabSize,
    tokenizer,
    tokenizerPath: tokenizer === 'bpe' ? path.join(dir, TOKENIZER_FILE) : null,
    trainPath: path.join(dir, TRAIN_FILE),
    valPath: path.join(dir, VAL_FILE),
    trainTokens: meta.trainTokens,
    valTokens: meta.valTokens,
  };
}

function markUsed(dir: string): void {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    // A read-only cache still serves its entries.
  }
}

/** Builds the entry in a private folder, then renames it into place; a concurrent builder that lost the race discards its copy. */
async function buildEntry(hash: string, dir: string, build: (buildDir: string) => Promise<DataMeta> | DataMeta): Promise<PreparedData> {
  const dataRoot = path.dirname(dir);
  fs.mkdirSync(dataRoot, { recursive: true });
  removeAbandonedBuilds(dataRoot);
  const buildDir = fs.mkdtempSync(path.join(dataRoot, `${BUILD_PREFIX}${hash}-`));
  try {
    writeJsonAtomic(path.join(buildDir, META_FILE), await build(buildDir));
    publishBuild(buildDir, dir);
  } finally {
    fs.rmSync(buildDir, { recursive: true, force: true });
  }
  const prepared = readPrepared(dir);
  if (!prepared) throw new EvoError(`data cache entry ${dir} is incomplete; delete it and run again`);
  return prepared;
}

/** Trains the BPE on the corpus, cuts it to the vocabulary and writes the tokenizer and both splits. */
async function buildFromText(corpus: CorpusFile[], spec: DataSpec, hash: string, buildDir: string): Promise<DataMeta> {
  const trainedPath = path.join(buildDir, 'bpe-trained.json');
  // The trainer reads files: a .jsonl file's documents are written out as the text they stand for.
  const extractedDir = path.join(buildDir, 'jsonl-text');
  const trainingFiles = corpus.map((file, i) => {
    if (file.format === 'text') return file.path;
    fs.mkdirSync(extractedDir, { recursive: true });
    const extracted = path.join(extractedDir, `${i}.txt`);
    fs.writeFileSync(extracted, file.text);
    return extracted;
  });
  await trainByteLevelBpe(trainingFiles, trainedPath);
  fs.rmSync(extractedDir, { recursive: true, force: true });
  const tokenizerJson = cutToVocabulary(JSON.parse(fs.readFileSync(trainedPath, 'utf8')) as TokenizerJson, spec.vocabSize);
  fs.rmSync(trainedPath);
  writeJsonAtomic(path.join(buildDir, TOKENIZER_FILE), tokenizerJson);

  const ids = await encodeWithTokenizer(Tokenizer.fromString(JSON.stringify(tokenizerJson)), corpusText(corpus));
  const { trainTokens, valTokens } = splitSizes(ids.length, spec.valFraction);
  writeTokenFile(path.join(buildDir, TRAIN_FILE), ids.subarray(0, trainTokens), spec.vocabSize);
  writeTokenFile(path.join(buildDir, VAL_FILE), ids.subarray(trainTokens), spec.vocabSize);
  return {
    format: DATA_FORMAT_VERSION,
    tokenizer: 'bpe',
    hash,
    vocabSize: spec.vocabSize,
    valFraction: spec.valFraction,
    tokenBytes: tokenBytesFor(spec.vocabSize),
    trainTokens,
    valTokens,
    corpusFiles: corpus.length,
    corpusBytes: corpus.reduce((total, file) => total + file.bytes.length, 0),
  };
}

/** Copies nanoGPT's ids into the two token files unchanged, checking each lies below the vocabulary. */
function buildFromTokens(corpus: Extract<Corpus, { kind: 'pretokenized' }>, spec: DataSpec, hash: string, buildDir: string): DataMeta {
  let splits: { file: string; start: number; count: number }[];
  if (corpus.val === null) {
    const { trainTokens, valTokens } = splitSizes(binTokens(corpus.train), spec.valFraction);
    splits = [
      { file: corpus.train, start: 0, count: trainTokens },
      { file: corpus.train, start: trainTokens, count: valTokens },
    ];
  } else {
    splits = [
      { file: corpus.train, start: 0, count: binTokens(corpus.train) },
      { file: corpus.val, start: 0, count: binTokens(corpus.val) },
    ];
  }
  const limit = maxTokensPerFile(spec.vocabSize);
  const tooLong = splits.find((split) => split.count > limit);
  if (tooLong) {
    throw new EvoError(
      `corpus file ${tooLong.file} gives a split of ${tooLong.count} tokens, more than the ${limit} the trainer can load at once; use a smaller part of it`,
    );
  }
  let largest = { id: -1, file: '' };
  function* checkedChunks(split: (typeof splits)[number]): Generator<Buffer> {
    for (const chunk of binChunks(split.file, split.start, split.start + split.count)) {
      for (let i = 0; i < chunk.length; i += 2) {
        const id = chunk[i] | (chunk[i + 1] << 8);
        if (id > largest.id) largest = { id, file: split.file };
      }
      yield chunk;
    }
  }
  const [train, val] = splits;
  writeTokenFileFromUint16(path.join(buildDir, TRAIN_FILE), train.count, spec.vocabSize, checkedChunks(train));
  writeTokenFileFromUint16(path.join(buildDir, VAL_FILE), val.count, spec.vocabSize, checkedChunks(val));
  if (largest.id >= spec.vocabSize) {
    throw new EvoError(
      `token id ${largest.id} in ${largest.file} is not below data.vocab_size ${spec.vocabSize}; ` +
        `set data.vocab_size (--vocab-size) to at least ${largest.id + 1}`,
    );
  }
  const files = corpus.val === null ? [corpus.train] : [corpus.train, corpus.val];
  return {
    format: DATA_FORMAT_VERSION,
    tokenizer: 'pretokenized',
    hash,
    vocabSize: spec.vocabSize,
    valFraction: spec.valFraction,
    tokenBytes: tokenBytesFor(spec.vocabSize),
    trainTokens: train.count,
    valTokens: val.count,
    corpusFiles: files.length,
    corpusBytes: files.reduce((total, file) => total + fs.statSync(file).size, 0),
  };
}

/** The last valFraction of the tokens (rounded) is validation; both splits must hold some. */
function splitSizes(total: number, valFraction: number): { trainTokens: number; valTokens: number } {
  const valTokens = Math.round(total * valFraction);
  const trainTokens = total - valTokens;
  if (valTokens === 0 || trainTokens === 0) {
    throw new EvoError(
      `corpus is too small: ${total} tokens leave no ${valTokens === 0 ? 'validation' : 'training'} tokens ` +
        `at data.val_fraction ${valFraction}; add data`,
    );
  }
  return { trainTokens, valTokens };
}

function binTokens(file: string): number {
  return fs.statSync(file).size / 2;
}

/** The bytes of ids [start, end) of a .bin file, a chunk at a time; each chunk is overwritten by the next. */
function* binChunks(file: string, start: number, end: number): Generator<Buffer> {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(Math.min(BIN_CHUNK_BYTES, 2 * (end - start)));
    for (let position = 2 * start; position < 2 * end; ) {
      const read = fs.readSync(fd, buffer, 0, Math.min(buffer.length, 2 * end - position), position);
      if (read === 0) throw new EvoError(`corpus file ${file} ended early while it was being read; was it changed?`);
      yield buffer.subarray(0, read - (read % 2));
      position += read - (read % 2);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A prepared corpus in the cache, for `evo gc`: its folder, plain parent and when it was last prepared or reused. */
export interface DataEntry {
  hash: string;
  dir: string;
  derivedFrom?: string;
  usedAtMs: number;
}

/** Every entry of the data cache; builds under way (their private folders) are not entries. */
export function dataEntries(): DataEntry[] {
  const root = cacheDir('data');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith(BUILD_PREFIX))
    .map((e) => {
      const dir = path.join(root, e.name);
      return { hash: e.name, dir, derivedFrom: readJsonIfExists<DataMeta>(path.join(dir, META_FILE))?.derivedFrom, usedAtMs: fs.statSync(dir).mtimeMs };
    });
}

/** Build folders of processes that died mid-build; a day is far beyond any live build's age. */
function removeAbandonedBuilds(dataRoot: string): void {
  for (const name of fs.readdirSync(dataRoot)) {
    if (!name.startsWith(BUILD_PREFIX)) continue;
    const buildDir = path.join(dataRoot, name);
    const stat = fs.statSync(buildDir, { throwIfNoEntry: false });
    if (stat && Date.now() - stat.mtimeMs > ABANDONED_BUILD_AGE_MS) fs.rmSync(buildDir, { recursive: true, force: true });
  }
}

function publishBuild(buildDir: string, dir: string): void {
  try {
    fs.renameSync(buildDir, dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another process published the same entry first; its content is the same, keep it.
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}
