// Specification of the data pipeline: corpus → byte-level BPE of the configured size → cached
// train/validation token files, and the one-line errors a user sees for bad data settings.
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
  const tokenizerJson = JSON.parse(fs.readFileSync(prepared.tokenizerPath, 'utf8'));
  assert.equal(Object.keys(tokenizerJson.model.vocab).length, 512);
  assert.equal(tokenizerJson.decoder.type, 'ByteLevel');

  const train = loadTokens(prepared.trainPath);
  const val = loadTokens(prepared.valPath);
  assert.equal(train.length, prepared.trainTokens);
  assert.equal(val.length, prepared.valTokens);
  const total = train.length + val.length;
  assert.ok(Math.abs(val.length - 0.1 * total) <= 1, 'validation is the last tenth of the tokens');
  // Train followed by validation is the whole novel in order: the split is contiguous and lossless.
  assert.equal(decodeTokens(prepared.tokenizerPath, allTokens(prepared)), mobyDick);
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
    const ids = await encodeText(prepared.tokenizerPath, text);
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 400));
    assert.equal(decodeTokens(prepared.tokenizerPath, ids), text);
  }
  const encodedCorpus = await encodeText(prepared.tokenizerPath, shortNovel);
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
  assert.equal(decodeTokens(prepared.tokenizerPath, allTokens(prepared)), text);
});

test('a corpus directory contributes its .txt files in name order, a newline between files', async (t) => {
  const home = freshHome(t);
  writeCorpusFile(home, 'b.txt', shortNovel.slice(30_000));
  writeCorpusFile(home, 'a.txt', shortNovel.slice(0, 30_000).trimEnd());
  writeCorpusFile(home, 'notes.md', 'not part of the corpus');
  const prepared = await prepareData({ corpus: [path.join(home, 'corpus')], vocabSize: 300, valFraction: 0.1 });
  const expected = shortNovel.slice(0, 30_000).trimEnd() + '\n' + shortNovel.slice(30_000);
  assert.equal(decodeTokens(prepared.tokenizerPath, allTokens(prepared)), expected);
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
  await assertOneLineError({ ...spec, corpus: [emptyDir] }, /holds no \.txt files/);
  await assertOneLineError(
    { ...spec, vocabSize: 20000 },
    /^vocabulary size 20000 is larger than this corpus supports \(BPE learned \d+ tokens\); lower data\.vocab_size or add text$/,
  );
  await assertOneLineError({ ...spec, vocabSize: 70000 }, /^vocabulary size 70000 is larger than any corpus supports/);
  await assertOneLineError({ ...spec, vocabSize: 200 }, /^vocabulary size 200 is below the 256 byte symbols/);
  await assertOneLineError({ ...spec, valFraction: 0 }, /^data\.val_fraction must be in \(0, 0\.5\], got 0$/);
  await assertOneLineError({ ...spec, valFraction: 0.6 }, /^data\.val_fraction must be in \(0, 0\.5\], got 0\.6$/);

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
  assert.equal(decodeTokens(first.tokenizerPath, allTokens(first)), shortNovel);
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
  assert.equal(decodeTokens(prepared.tokenizerPath, allTokens(prepared)), shortNovel);
  assert.deepEqual(fs.readdirSync(dataRoot), [hash]);
});
