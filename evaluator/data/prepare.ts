// prepareData: corpus → byte-level BPE tokenizer of the configured size → train/validation token
// files, cached under a content hash so a prepared corpus is reused, never rebuilt.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from 'tokenizers';
import { readJsonIfExists, writeJsonAtomic } from '../../core/atomic-file';
import { EvoError } from '../../core/errors';
import { cacheDir } from '../../core/paths';
import { CorpusFile, corpusText, readCorpus } from './corpus';
import { tokenBytesFor, writeTokenFile } from './token-file';
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

interface DataMeta {
  format: number;
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
  checkDataSpec(spec);
  const corpus = readCorpus(spec.corpus);
  const hash = dataHash(corpus, spec);
  const dir = cacheDir('data', hash);
  return readPrepared(dir) ?? (await buildPreparedData(corpus, spec, hash, dir));
}

function checkDataSpec({ vocabSize, valFraction }: DataSpec): void {
  if (!Number.isInteger(vocabSize)) throw new EvoError(`data.vocab_size must be a whole number, got ${vocabSize}`);
  if (vocabSize < BYTE_ALPHABET_SIZE) {
    throw new EvoError(
      `vocabulary size ${vocabSize} is below the ${BYTE_ALPHABET_SIZE} byte symbols a byte-level BPE needs; raise data.vocab_size`,
    );
  }
  if (vocabSize > MAX_VOCAB_SIZE) {
    throw new EvoError(
      `vocabulary size ${vocabSize} is larger than any corpus supports (the BPE trainer stops at ${TRAINER_VOCAB_LIMIT} ` +
        `tokens, at most ${MAX_VOCAB_SIZE} with all bytes); lower data.vocab_size`,
    );
  }
  if (!(valFraction > 0 && valFraction <= 0.5)) {
    throw new EvoError(`data.val_fraction must be in (0, 0.5], got ${valFraction}`);
  }
}

function dataHash(corpus: CorpusFile[], { vocabSize, valFraction }: DataSpec): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ format: DATA_FORMAT_VERSION, vocabSize, valFraction }));
  // Each file's length goes in too: the tokenizer trains file by file, so the boundaries matter.
  for (const file of corpus) {
    hash.update(`\n${file.bytes.length}\n`);
    hash.update(file.bytes);
  }
  return hash.digest('hex').slice(0, 16);
}

/** A complete cache entry, or undefined: entries appear only by renaming a finished build into place. */
function readPrepared(dir: string): PreparedData | undefined {
  const meta = readJsonIfExists<DataMeta>(path.join(dir, META_FILE));
  if (!meta) return undefined;
  return {
    hash: meta.hash,
    dir,
    vocabSize: meta.vocabSize,
    tokenizerPath: path.join(dir, TOKENIZER_FILE),
    trainPath: path.join(dir, TRAIN_FILE),
    valPath: path.join(dir, VAL_FILE),
    trainTokens: meta.trainTokens,
    valTokens: meta.valTokens,
  };
}

/** Builds the entry in a private folder, then renames it into place; a concurrent builder that lost the race discards its copy. */
async function buildPreparedData(corpus: CorpusFile[], spec: DataSpec, hash: string, dir: string): Promise<PreparedData> {
  const dataRoot = path.dirname(dir);
  fs.mkdirSync(dataRoot, { recursive: true });
  removeAbandonedBuilds(dataRoot);
  const buildDir = fs.mkdtempSync(path.join(dataRoot, `${BUILD_PREFIX}${hash}-`));
  try {
    const trainedPath = path.join(buildDir, 'bpe-trained.json');
    await trainByteLevelBpe(corpus.map((file) => file.path), trainedPath);
    const tokenizerJson = cutToVocabulary(JSON.parse(fs.readFileSync(trainedPath, 'utf8')) as TokenizerJson, spec.vocabSize);
    fs.rmSync(trainedPath);
    writeJsonAtomic(path.join(buildDir, TOKENIZER_FILE), tokenizerJson);

    const ids = await encodeWithTokenizer(Tokenizer.fromString(JSON.stringify(tokenizerJson)), corpusText(corpus));
    const valTokens = Math.round(ids.length * spec.valFraction);
    const trainTokens = ids.length - valTokens;
    if (valTokens === 0 || trainTokens === 0) {
      throw new EvoError(
        `corpus is too small: ${ids.length} tokens leave no ${valTokens === 0 ? 'validation' : 'training'} tokens ` +
          `at data.val_fraction ${spec.valFraction}; add text`,
      );
    }
    writeTokenFile(path.join(buildDir, TRAIN_FILE), ids.subarray(0, trainTokens), spec.vocabSize);
    writeTokenFile(path.join(buildDir, VAL_FILE), ids.subarray(trainTokens), spec.vocabSize);
    const meta: DataMeta = {
      format: DATA_FORMAT_VERSION,
      hash,
      vocabSize: spec.vocabSize,
      valFraction: spec.valFraction,
      tokenBytes: tokenBytesFor(spec.vocabSize),
      trainTokens,
      valTokens,
      corpusFiles: corpus.length,
      corpusBytes: corpus.reduce((total, file) => total + file.bytes.length, 0),
    };
    writeJsonAtomic(path.join(buildDir, META_FILE), meta);
    publishBuild(buildDir, dir);
  } finally {
    fs.rmSync(buildDir, { recursive: true, force: true });
  }
  const prepared = readPrepared(dir);
  if (!prepared) throw new EvoError(`data cache entry ${dir} is incomplete; delete it and run again`);
  return prepared;
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
