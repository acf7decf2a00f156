// Specification of what a training leaves on disk and what it trusts there: the result is written by
// the parent from the child's authenticated report, outside every folder the child may write; a
// checkpoint carries a checksum, and a corrupt one costs a few steps with a warning, never the training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { removeTrainingFiles, trainSize, trainingDir, trainingKey, trainingResultPath, type SeedResult } from '../evaluator/evaluate';
import { prepareData, type PreparedData } from '../evaluator/data/prepare';
import { profileSettings } from '../evaluator/profiles';
import { previousCheckpointPath, type TrainProgress } from '../evaluator/train';
import { baselineProgram } from '../core/program';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-checkpoints-'));
const settings = profileSettings('micro');
settings.training = { ...settings.training, steps: 40, checkpointEvery: 10, evalEvery: 20 };
const program = baselineProgram('coefficient_dynamics');
const size = settings.sizes[0];
const seed = settings.seeds[0];
let data: PreparedData;

before(async () => {
  process.env.EVOSCALE_HOME = path.join(work, 'home');
  data = await prepareData(settings.data);
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

const key = () => trainingKey(program.hash, size, settings, data.hash, seed);
const checkpoint = () => path.join(trainingDir(key()), 'checkpoint.bin');

/** Trains with a fresh cache entry, collecting warnings; `stopAtCheckpoint` kills the child once that step's checkpoint is on disk. */
async function train(stopAtCheckpoint?: number): Promise<{ result?: SeedResult; warnings: string[] }> {
  const warnings: string[] = [];
  const abort = new AbortController();
  const onProgress = (p: TrainProgress) => {
    if (p.event === 'warning') warnings.push(p.message ?? '');
    if (p.event === 'checkpoint' && stopAtCheckpoint !== undefined && p.step >= stopAtCheckpoint) abort.abort();
  };
  if (stopAtCheckpoint === undefined) return { result: await trainSize(program, size, settings, data, seed, { onProgress }), warnings };
  await assert.rejects(trainSize(program, size, settings, data, seed, { onProgress, signal: abort.signal }));
  return { warnings };
}

function forget(): void {
  fs.rmSync(trainingResultPath(key()), { force: true });
  removeTrainingFiles(key());
}

/** Flips bytes in the middle of the file (its tensor data): only the checksum can tell. */
function corrupt(file: string): void {
  const buf = fs.readFileSync(file);
  for (let i = 0; i < 16; i++) buf[Math.floor(buf.length / 2) + i] ^= 0xff;
  fs.writeFileSync(file, buf);
}

let uninterrupted: SeedResult;

test("the parent records a training's result outside the child's folder, and a result.json planted there is no cache hit", async () => {
  forget();
  const { result, warnings } = await train();
  assert.ok(result && !result.cached);
  assert.deepEqual(warnings, []);
  uninterrupted = result;
  const resultFile = trainingResultPath(key());
  assert.ok(fs.existsSync(resultFile), 'the result is recorded');
  const childFolder = trainingDir(key());
  assert.ok(path.relative(childFolder, resultFile).startsWith('..' + path.sep), 'the result lies outside the folder the child may write');
  assert.deepEqual(fs.readdirSync(childFolder), [], 'checkpoints and scratch are gone once the result is recorded');

  // What a child that escaped its block's sandbox could do: write a flattering result into its own folder.
  fs.rmSync(resultFile);
  fs.writeFileSync(path.join(childFolder, 'result.json'), JSON.stringify({ ...result, valLoss: 0.001 }));
  const again = await trainSize(program, size, settings, data, seed);
  assert.equal(again.cached, false, 'trained again, not read from the planted file');
  assert.equal(again.valLoss, uninterrupted.valLoss);
  fs.rmSync(path.join(childFolder, 'result.json'));
});

test('a corrupt checkpoint is caught by its checksum: the training says so, resumes from the previous good one and ends with the loss of an uninterrupted run', async () => {
  forget();
  await train(20);
  const latest = checkpoint();
  assert.ok(fs.existsSync(latest) && fs.existsSync(previousCheckpointPath(latest)), 'the latest checkpoint and the one before it are on disk');
  corrupt(latest);
  const { result, warnings } = await train();
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0], /checkpoint .*checkpoint\.bin cannot be used: its checksum does not match \(the file is corrupt\); falling back to the previous checkpoint/);
  assert.ok(result && result.resumedFromStep > 0 && result.resumedFromStep < 20 + settings.training.checkpointEvery, `resumed from the previous checkpoint: step ${result?.resumedFromStep}`);
  assert.equal(result.valLoss, uninterrupted.valLoss, 'the same loss as an uninterrupted run');
});

test('when every checkpoint is corrupt the training says so for each and completes from step 0', async () => {
  forget();
  await train(20);
  corrupt(checkpoint());
  fs.writeFileSync(previousCheckpointPath(checkpoint()), 'not a checkpoint');
  const { result, warnings } = await train();
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0], /checksum does not match .*; falling back to the previous checkpoint$/);
  assert.match(warnings[1], /checkpoint\.bin\.prev cannot be used: it is not an evoscale checkpoint of this format; starting from step 0$/);
  assert.equal(result?.resumedFromStep, 0);
  assert.equal(result.valLoss, uninterrupted.valLoss);
});

test('a full disk during a checkpoint write skips that checkpoint with a clear warning and the training completes with the loss of an uninterrupted run', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root (CI runs as root)' }, async () => {
  forget();
  await train(10);
  const checkpointBytes = fs.statSync(checkpoint()).size;
  forget();
  // The training's folder on a tmpfs with room for one checkpoint and a half: the first fits, the next does not.
  const dir = trainingDir(key());
  fs.mkdirSync(dir, { recursive: true });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((4 * checkpointBytes) / 4096) * 4096}`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(mount.status, 0, mount.stderr);
  try {
    const { bavail, bsize } = fs.statfsSync(dir);
    fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(bavail * bsize - Math.floor(1.5 * checkpointBytes)));
    const { result, warnings } = await train();
    assert.ok(warnings.length >= 1, 'the full disk is reported');
    assert.match(warnings[0], /^the disk is full \(ENOSPC\): checkpoint at step 20 not written; training goes on from memory/);
    assert.equal(result?.resumedFromStep, 0);
    assert.equal(result.valLoss, uninterrupted.valLoss, 'the same loss as an uninterrupted run');
    assert.ok(fs.existsSync(trainingResultPath(key())), 'the result is recorded (outside the full disk)');
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no half-written file holds on to the space');
  } finally {
    spawnSync('umount', [dir]);
  }
});
