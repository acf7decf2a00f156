// Specification of the data pipeline: corpus (text, .jsonl, or nanoGPT's pre-tokenised .bin) →
// byte-level BPE of the configured size (none for .bin) → cached train/validation token files, and
// the one-line errors a user sees for bad data settings.
import { test, TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EvoError } from '../core/errors';
import { cacheDir } from '../core/paths';
import { mobyDickPath } from '../evaluator/data/corpus';
import { DataSpec, decodeTokens, encodeText, loadTokens, prepareData, PreparedData } from '../evaluator/data/prepare';

const mobyDick = fs.readFileSync(mobyDickPath(), 'utf8');

/** A fresh EVOSCALE_HOME (and a scratch folder for corpus files) for one test, removed after it. */
function freshHome(t: TestContext): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-data-'));
  process.env.EVOSCALE_HOME = home;
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

function writeCorpusFile(home: string, name: string, text: string): string {
  const file = path.join(home, 'corpus', name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** The first chapters of Moby Dick: enough text for a few thousand BPE tokens, quick to train on. */
const shortNovel = mobyDick.slice(0, 60_000);

function allTokens(prepared: PreparedData): Int32Array {
  const train = loadTokens(prepared.trainPath);
  const val = loadTokens(prepared.valPath);
  const all = new Int32Array(train.length + val.length);
  all.set(train);
  all.set(val, train.length);
  return all;
}

/** The BPE tokenizer of a text corpus's entry. */
function tokenizerOf(prepared: PreparedData): string {
  assert.equal(prepared.tokenizer, 'bpe');
  assert.ok(prepared.tokenizerPath, 'a BPE entry has a tokenizer file');
  return prepared.tokenizerPath;
}

/** Train then validation tokens, decoded with the entry's tokenizer. */
function decodedCorpus(prepared: PreparedData): string {
  return decodeTokens(tokenizerOf(prepared), allTokens(prepared));
}

/** Writes ids as nanoGPT's prepare.py does: flat uint16, little-endian. */
function writeBin(file: string, ids: number[]): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const bytes = Buffer.alloc(2 * ids.length);
  ids.forEach((id, i) => bytes.writeUInt16LE(id, 2 * i));
  fs.writeFileSync(file, bytes);
  return file;
}

/** Reproducible ids in [0, below), with below − 1 among them. */
function someIds(count: number, below: number, seed: number): number[] {
  let state = seed;
  const ids = Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % below;
  });
  ids[count >> 1] = below - 1;
  return ids;
}

/** Every file under dir with its modification time and content digest. */
function snapshot(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    if (!stat.isFile()) continue;
    entries[name] = `${stat.mtimeMs} ${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
  }
  return entries;
}

async function assertOneLineError(spec: DataSpec, message: RegExp | string): Promise<void> {
  await assert.rejects(prepareData(spec), (err: unknown) => {
    assert.ok(err instanceof EvoError, `expected an EvoError, got ${String(err)}`);
    if (typeof message === 'string') assert.ok(err.message.includes(message), `"${err.message}" names "${message}"`);
    else assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'), 'the message is one line');
    return true;
  });
}

test('prepares the bundled Moby Dick at vocabulary 512, and its token files decode back to the novel', async (t) => {
  freshHome(t);
  const prepared = await prepareData({ corpus: 'moby-dick', vocabSize: 512, valFraction: 0.1 });

  assert.match(prepared.hash, /^[0-9a-f]{16}$/);
  assert.equal(prepared.dir, cacheDir('data', prepared.hash));
  assert.equal(prepared.vocabSize, 512);
  const tokenizerJson = JSON.parse(fs.readFileSync(tokenizerOf(prepared), 'utf8'));
  assert.equal(Object.keys(tokenizerJson.model.vocab).length, 512);
  assert.equal(tokenizerJson.decoder.type, 'ByteLevel');

  const train = loadTokens(prepared.trainPath);
  const val = loadTokens(prepared.valPath);
  assert.equal(train.length, prepared.trainTokens);
  assert.equal(val.length, prepared.valTokens);
  const total = train.length + val.length;
  assert.ok(Math.abs(val.length - 0.1 * total) <= 1, 'validation is the last tenth of the tokens');
  // Train followed by validation is the whole novel in order: the split is contiguous and lossless.
  assert.equal(decodedCorpus(prepared), mobyDick);
});

test('token ids all lie below the vocabulary size', async (t) => {
  const home = freshHome(t);
  const corpus = [writeCorpusFile(home, 'novel.txt', shortNovel)];
  for (const vocabSize of [256, 300, 1000]) {
    const prepared = await prepareData({ corpus, vocabSize, valFraction: 0.2 });
    const ids = allTokens(prepared);
    assert.ok(ids.every((id) => id >= 0 && id < vocabSize), `ids within [0, ${vocabSize})`);
  }
});

test('round-trips any text through the tokenizer, including bytes the corpus never contained', async (t) => {
  const home = freshHome(t);
  const prepared = await prepareData({ corpus: [writeCorpusFile(home, 'novel.txt', shortNovel)], vocabSize: 400, valFraction: 0.1 });
  for (const text of ['Call me Ishmael.', '  indented\r\n\ttabs\n\n', 'café naïve — 鯨 🐋', 'control \u0000\u0001\u007f bytes', '']) {
    const ids = await encodeText(tokenizerOf(prepared), text);
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 400));
    assert.equal(decodeTokens(tokenizerOf(prepared), ids), text);
  }
  const encodedCorpus = await encodeText(tokenizerOf(prepared), shortNovel);
  assert.deepEqual(encodedCorpus, Array.from(allTokens(prepared)), 'encodeText agrees with the token files');
});

test('a second preparation of the same data is a cache hit that rewrites nothing', async (t) => {
  const home = freshHome(t);
  const spec: DataSpec = { corpus: [writeCorpusFile(home, 'novel.txt', shortNovel)], vocabSize: 300, valFraction: 0.1 };
  const first = await prepareData(spec);
  const before = snapshot(first.dir);
  const second = await prepareData(spec);

  assert.deepEqual(second, first);
  assert.deepEqual(snapshot(first.dir), before, 'no file in the entry was rewritten');
  assert.deepEqual(fs.readdirSync(cacheDir('data')), [first.hash], 'one entry and no build folders left behind');

  const otherVocab = await prepareData({ ...spec, vocabSize: 301 });
  const otherSplit = await prepareData({ ...spec, valFraction: 0.2 });
  assert.equal(new Set([first.hash, otherVocab.hash, otherSplit.hash]).size, 3, 'vocab size and split are part of the key');
});

test('a user corpus file is tokenized in full', async (t) => {
  const home = freshHome(t);
  const text = 'The whale surfaced near the ship.\nThe crew watched the whale dive again.\n'.repeat(200);
  const prepared = await prepareData({ corpus: [writeCorpusFile(home, 'whales.txt', text)], vocabSize: 280, valFraction: 0.25 });
  assert.equal(prepared.vocabSize, 280);
  assert.equal(decodedCorpus(prepared), text);
});

test('a corpus directory contributes its .txt files in name order, a newline between files', async (t) => {
  const home = freshHome(t);
  writeCorpusFile(home, 'b.txt', shortNovel.slice(30_000));
  writeCorpusFile(home, 'a.txt', shortNovel.slice(0, 30_000).trimEnd());
  writeCorpusFile(home, 'notes.md', 'not part of the corpus');
  const prepared = await prepareData({ corpus: [path.join(home, 'corpus')], vocabSize: 300, valFraction: 0.1 });
  const expected = shortNovel.slice(0, 30_000).trimEnd() + '\n' + shortNovel.slice(30_000);
  assert.equal(decodedCorpus(prepared), expected);
});

test('bad data settings each fail with one clear line and leave the cached entry intact', async (t) => {
  const home = freshHome(t);
  const novel = writeCorpusFile(home, 'novel.txt', shortNovel);
  const spec: DataSpec = { corpus: [novel], vocabSize: 300, valFraction: 0.1 };
  const cached = await prepareData(spec);
  const before = snapshot(cacheDir('data'));

  const missing = path.join(home, 'no-such-book.txt');
  await assertOneLineError({ ...spec, corpus: [novel, missing] }, `corpus path ${missing} does not exist`);
  const empty = writeCorpusFile(home, 'empty.txt', '');
  await assertOneLineError({ ...spec, corpus: [empty] }, `corpus file ${empty} is empty`);
  const blank = writeCorpusFile(home, 'blank.txt', ' \n\t\n');
  await assertOneLineError({ ...spec, corpus: [blank] }, `corpus file ${blank} is empty`);
  const emptyDir = path.join(home, 'empty-dir');
  fs.mkdirSync(emptyDir);
  await assertOneLineError({ ...spec, corpus: [emptyDir] }, /holds no \.txt or \.jsonl files/);
  await assertOneLineError(
    { ...spec, vocabSize: 20000 },
    /^vocabulary size 20000 is larger than this corpus supports \(BPE learned \d+ tokens\); lower data\.vocab_size or add text$/,
  );
  await assertOneLineError({ ...spec, vocabSize: 70000 }, /^vocabulary size 70000 is larger than any corpus supports/);
  await assertOneLineError({ ...spec, vocabSize: 200 }, /^vocabulary size 200 is below the 256 byte symbols/);
  await assertOneLineError({ ...spec, valFraction: 0 }, /^data\.val_fraction must be in \(0, 0\.5\], got 0$/);
  await assertOneLineError({ ...spec, valFraction: 0.6 }, /^data\.val_fraction must be in \(0, 0\.5\], got 0\.6$/);
  const copy = { fraction: 0.25, period: 4, length: 16, symbols: 8 };
  await assertOneLineError({ ...spec, copySegments: { ...copy, fraction: 1 } }, /^data\.copy_segments\.fraction must be in \(0, 1\), got 1$/);
  await assertOneLineError({ ...spec, copySegments: { ...copy, length: 4 } }, /^data\.copy_segments\.length must be a whole number above the period \(4\), got 4$/);
  await assertOneLineError({ ...spec, copySegments: { ...copy, symbols: 301 } }, /^data\.copy_segments\.symbols must be a whole number from 2 to the vocabulary size \(300\), got 301$/);

  assert.deepEqual(snapshot(cacheDir('data')), before, 'the cache is exactly as it was');
  assert.deepEqual(fs.readdirSync(cacheDir('data')), [cached.hash], 'no build folders left behind');
  assert.deepEqual(await prepareData(spec), cached);
});

test('two preparations of the same data at once agree and leave one complete entry', async (t) => {
  const home = freshHome(t);
  const spec: DataSpec = { corpus: [writeCorpusFile(home, 'novel.txt', shortNovel)], vocabSize: 320, valFraction: 0.1 };
  const [first, second] = await Promise.all([prepareData(spec), prepareData(spec)]);
  assert.deepEqual(first, second);
  assert.deepEqual(fs.readdirSync(cacheDir('data')), [first.hash]);
  assert.deepEqual(fs.readdirSync(first.dir).sort(), ['meta.json', 'tokenizer.json', 'train.tokens', 'val.tokens']);
  assert.equal(decodedCorpus(first), shortNovel);
});

test('a build cut short by a crash is never taken for a cache entry, and is cleared once abandoned', async (t) => {
  const home = freshHome(t);
  const spec: DataSpec = { corpus: [writeCorpusFile(home, 'novel.txt', shortNovel)], vocabSize: 300, valFraction: 0.1 };
  const dataRoot = cacheDir('data');
  const { hash } = await prepareData(spec);
  fs.rmSync(cacheDir('data', hash), { recursive: true });
  // What a process killed while building this entry leaves: its private build folder, part written.
  const abandoned = path.join(dataRoot, `.build-${hash}-dead01`);
  fs.mkdirSync(abandoned);
  fs.writeFileSync(path.join(abandoned, 'tokenizer.json'), '{');
  fs.writeFileSync(path.join(abandoned, 'meta.json'), '{"hash":');
  const dayAndAMinuteAgo = new Date(Date.now() - (24 * 60 + 1) * 60_000);
  fs.utimesSync(abandoned, dayAndAMinuteAgo, dayAndAMinuteAgo);

  const prepared = await prepareData(spec);
  assert.equal(prepared.hash, hash);
  assert.equal(decodedCorpus(prepared), shortNovel);
  assert.deepEqual(fs.readdirSync(dataRoot), [hash]);
});

test('a .jsonl corpus is its documents joined by newlines, and its tokens decode back to them', async (t) => {
  const home = freshHome(t);
  const documents = shortNovel.slice(0, 40_000).split('\n\n');
  const lines = documents.flatMap((text, i) => [JSON.stringify({ id: i, text }), ...(i % 7 === 0 ? ['', '  '] : [])]);
  const jsonl = writeCorpusFile(home, 'docs.jsonl', lines.join('\n') + '\n');
  const prepared = await prepareData({ corpus: [jsonl], vocabSize: 300, valFraction: 0.1 });
  assert.equal(decodedCorpus(prepared), documents.join('\n'), 'blank lines skipped, one newline between documents');

  // In a folder, .jsonl and .txt files count in name order, other extensions are skipped.
  const folder = path.join(home, 'mixed');
  fs.mkdirSync(folder);
  fs.copyFileSync(jsonl, path.join(folder, 'a.jsonl'));
  fs.writeFileSync(path.join(folder, 'b.txt'), 'The end.\n');
  fs.writeFileSync(path.join(folder, 'c.json'), '{"text": "skipped"}\n');
  const fromFolder = await prepareData({ corpus: [folder], vocabSize: 300, valFraction: 0.1 });
  assert.equal(decodedCorpus(fromFolder), documents.join('\n') + '\nThe end.\n');

  // The same bytes read as text are another corpus, with another cache entry.
  const asText = writeCorpusFile(home, 'docs.txt', fs.readFileSync(jsonl, 'utf8'));
  assert.notEqual((await prepareData({ corpus: [asText], vocabSize: 300, valFraction: 0.1 })).hash, prepared.hash);
});

test('a file named directly with an unknown extension is read as text', async (t) => {
  const home = freshHome(t);
  const text = 'Notes on whales: the sperm whale, the right whale, the fin-back.\n'.repeat(100);
  const prepared = await prepareData({ corpus: [writeCorpusFile(home, 'notes.md', text)], vocabSize: 270, valFraction: 0.1 });
  assert.equal(decodedCorpus(prepared), text);
});

test('.jsonl errors name the file and line: not JSON, no string "text" field, no documents', async (t) => {
  const home = freshHome(t);
  const spec: DataSpec = { corpus: [], vocabSize: 300, valFraction: 0.1 };
  const good = JSON.stringify({ text: 'Call me Ishmael.' });
  const notJson = writeCorpusFile(home, 'not-json.jsonl', `${good}\n\n{"text": "unterminated\n`);
  await assertOneLineError({ ...spec, corpus: [notJson] }, `corpus file ${notJson}:3 is not JSON`);
  for (const [name, line] of [['number.jsonl', '{"text": 5}'], ['missing.jsonl', '{"body": "x"}'], ['array.jsonl', '["text"]'], ['null.jsonl', 'null']]) {
    const file = writeCorpusFile(home, name, `${good}\n${line}\n`);
    await assertOneLineError({ ...spec, corpus: [file] }, `corpus file ${file}:2 has no string "text" field`);
  }
  for (const [name, content] of [['empty.jsonl', ''], ['blank.jsonl', '\n  \n']]) {
    const file = writeCorpusFile(home, name, content);
    await assertOneLineError({ ...spec, corpus: [file] }, `corpus file ${file} is empty`);
  }
  // Inside a folder the bad file is named all the same.
  const folder = path.join(home, 'folder');
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'a.txt'), shortNovel);
  fs.copyFileSync(notJson, path.join(folder, 'b.jsonl'));
  await assertOneLineError({ ...spec, corpus: [folder] }, `corpus file ${path.join(folder, 'b.jsonl')}:3 is not JSON`);
  assert.ok(!fs.existsSync(cacheDir('data')), 'nothing was cached');
});

test('a nanoGPT folder of train.bin and val.bin becomes token files holding exactly its ids, with no tokenizer', async (t) => {
  const home = freshHome(t);
  const folder = path.join(home, 'openwebtext');
  const trainIds = someIds(5000, 50257, 1);
  const valIds = someIds(600, 50257, 2);
  writeBin(path.join(folder, 'train.bin'), trainIds);
  writeBin(path.join(folder, 'val.bin'), valIds);
  // What else nanoGPT's data folders hold is not read.
  fs.writeFileSync(path.join(folder, 'input.txt'), 'First Citizen:\n');
  fs.writeFileSync(path.join(folder, 'prepare.py'), 'import numpy\n');
  fs.writeFileSync(path.join(folder, 'meta.pkl'), Buffer.from([0x80, 0x04]));

  // GPT-2's 50257 ids: above the BPE's limit, which does not apply to pre-tokenised data.
  const spec: DataSpec = { corpus: [folder], vocabSize: 50257, valFraction: 0.1 };
  const prepared = await prepareData(spec);
  assert.equal(prepared.tokenizer, 'pretokenized');
  assert.equal(prepared.tokenizerPath, null);
  assert.equal(prepared.vocabSize, 50257);
  assert.deepEqual(Array.from(loadTokens(prepared.trainPath)), trainIds, 'train.bin as it was');
  assert.deepEqual(Array.from(loadTokens(prepared.valPath)), valIds, 'val.bin as it was, whatever val_fraction says');
  assert.equal(prepared.trainTokens, trainIds.length);
  assert.equal(prepared.valTokens, valIds.length);
  assert.equal(fs.statSync(prepared.trainPath).size, 16 + 2 * trainIds.length, 'two bytes a token');
  assert.deepEqual(fs.readdirSync(prepared.dir).sort(), ['meta.json', 'train.tokens', 'val.tokens']);
  const again = await prepareData(spec);
  assert.deepEqual(again, prepared, 'a cache hit');

  // A vocabulary over 65536 widens the token files to four bytes; the ids stay the same.
  const wide = await prepareData({ ...spec, vocabSize: 70000 });
  assert.notEqual(wide.hash, prepared.hash);
  assert.equal(fs.statSync(wide.trainPath).size, 16 + 4 * trainIds.length);
  assert.deepEqual(Array.from(loadTokens(wide.trainPath)), trainIds);

  // The ids are the key: one changed id is another entry.
  writeBin(path.join(folder, 'val.bin'), [1, ...valIds.slice(1)]);
  assert.notEqual((await prepareData(spec)).hash, prepared.hash);
});

test('a vocab_size not above the largest token id is refused, naming the id and the file', async (t) => {
  const home = freshHome(t);
  const folder = path.join(home, 'gpt2');
  writeBin(path.join(folder, 'train.bin'), someIds(3000, 50000, 3));
  const val = writeBin(path.join(folder, 'val.bin'), someIds(300, 50257, 4));
  await assertOneLineError(
    { corpus: [folder], vocabSize: 50256, valFraction: 0.1 },
    `token id 50256 in ${val} is not below data.vocab_size 50256; set data.vocab_size (--vocab-size) to at least 50257`,
  );
  await assertOneLineError({ corpus: [folder], vocabSize: 0, valFraction: 0.1 }, 'data.vocab_size must be positive, got 0');
  // Files that are not whole uint16 ids, and half a nanoGPT folder.
  const odd = path.join(home, 'odd.bin');
  fs.writeFileSync(odd, Buffer.from([1, 2, 3]));
  await assertOneLineError({ corpus: [odd], vocabSize: 300, valFraction: 0.1 }, `corpus file ${odd} is not a nanoGPT token file`);
  const empty = path.join(home, 'empty.bin');
  fs.writeFileSync(empty, '');
  await assertOneLineError({ corpus: [empty], vocabSize: 300, valFraction: 0.1 }, `corpus file ${empty} is empty (no tokens)`);
  fs.rmSync(val);
  await assertOneLineError({ corpus: [folder], vocabSize: 50257, valFraction: 0.1 }, `corpus directory ${folder} holds train.bin but no val.bin`);
  assert.deepEqual(fs.readdirSync(cacheDir('data')), [], 'nothing cached, no build folders left behind');
});

test('mixing .bin data with text or .jsonl in one corpus is refused', async (t) => {
  const home = freshHome(t);
  const folder = path.join(home, 'nanogpt');
  writeBin(path.join(folder, 'train.bin'), someIds(100, 300, 5));
  writeBin(path.join(folder, 'val.bin'), someIds(20, 300, 6));
  const single = writeBin(path.join(home, 'single.bin'), someIds(100, 300, 7));
  const text = writeCorpusFile(home, 'novel.txt', shortNovel);
  const jsonl = writeCorpusFile(home, 'docs.jsonl', JSON.stringify({ text: shortNovel }));
  const spec: DataSpec = { corpus: [], vocabSize: 300, valFraction: 0.1 };
  await assertOneLineError({ ...spec, corpus: [folder, text] }, `corpus mixes pre-tokenised .bin data (${folder}) with text (${text})`);
  await assertOneLineError({ ...spec, corpus: [jsonl, single] }, `corpus mixes pre-tokenised .bin data (${single}) with text (${jsonl})`);
  await assertOneLineError({ ...spec, corpus: [single, folder] }, /^corpus names 2 pre-tokenised sources/);
});

test('a single .bin file is split by val_fraction like text: the last tokens are validation', async (t) => {
  const home = freshHome(t);
  const ids = someIds(1000, 1024, 8);
  const bin = writeBin(path.join(home, 'tokens.bin'), ids);
  const prepared = await prepareData({ corpus: [bin], vocabSize: 1024, valFraction: 0.1 });
  assert.equal(prepared.tokenizer, 'pretokenized');
  assert.equal(prepared.tokenizerPath, null);
  assert.deepEqual(Array.from(loadTokens(prepared.trainPath)), ids.slice(0, 900));
  assert.deepEqual(Array.from(loadTokens(prepared.valPath)), ids.slice(900));
  assert.deepEqual([prepared.trainTokens, prepared.valTokens], [900, 100]);

  const quarter = await prepareData({ corpus: [bin], vocabSize: 1024, valFraction: 0.25 });
  assert.notEqual(quarter.hash, prepared.hash, 'the split is part of the key');
  assert.deepEqual(Array.from(loadTokens(quarter.valPath)), ids.slice(750));

  const tiny = writeBin(path.join(home, 'tiny.bin'), [5, 6]);
  await assertOneLineError({ corpus: [tiny], vocabSize: 1024, valFraction: 0.1 }, 'corpus is too small: 2 tokens leave no validation tokens');
});

test('copy segments: the text keeps every token in order, and after its first period each segment token repeats the one a period back', async (t) => {
  const home = freshHome(t);
  const novel = writeCorpusFile(home, 'novel.txt', shortNovel);
  const plainSpec: DataSpec = { corpus: [novel], vocabSize: 300, valFraction: 0.1 };
  const copy = { fraction: 0.25, period: 5, length: 20, symbols: 12 };
  const plain = await prepareData(plainSpec);
  const mixed = await prepareData({ ...plainSpec, copySegments: copy });
  assert.notEqual(mixed.hash, plain.hash, 'a corpus with segments is its own cache entry');
  assert.equal(mixed.tokenizerPath && fs.readFileSync(mixed.tokenizerPath, 'utf8'), plain.tokenizerPath && fs.readFileSync(plain.tokenizerPath, 'utf8'));
  const stride = Math.round((copy.length * (1 - copy.fraction)) / copy.fraction); // 60 text tokens between segments
  const trainText = loadTokens(plain.trainPath);
  const uses = new Map<number, number>();
  for (const id of trainText) uses.set(id, (uses.get(id) ?? 0) + 1);
  const rarest = new Set([...Array(300).keys()].sort((a, b) => (uses.get(a) ?? 0) - (uses.get(b) ?? 0) || a - b).slice(0, copy.symbols));
  for (const [plainPath, mixedPath] of [[plain.trainPath, mixed.trainPath], [plain.valPath, mixed.valPath]]) {
    const text = loadTokens(plainPath);
    const out = loadTokens(mixedPath);
    const segments = Math.floor(text.length / stride);
    assert.equal(out.length, text.length + segments * copy.length);
    const kept: number[] = [];
    for (let s = 0, o = 0; s <= segments; s++) {
      kept.push(...out.subarray(o, o + stride));
      o += stride;
      if (s === segments) break;
      const segment = out.subarray(o, o + copy.length);
      o += copy.length;
      for (let i = 0; i < copy.length; i++) {
        assert.ok(rarest.has(segment[i]), `symbol ${segment[i]} is one of the ${copy.symbols} ids the text uses least`);
        if (i >= copy.period) assert.equal(segment[i], segment[i - copy.period]);
      }
    }
    assert.deepEqual(kept.slice(0, text.length), [...text]);
    assert.ok(segments * copy.length / out.length > 0.24 && segments * copy.length / out.length <= 0.25, 'segments are the configured fraction');
  }
  assert.deepEqual(await prepareData({ ...plainSpec, copySegments: copy }), mixed, 'a second preparation is a cache hit');
});
