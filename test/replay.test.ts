// Workflow code must stay deterministic for runs already in flight: every stored history
// (test/fixtures/histories, recorded by the pipeline spec with EVOSCALE_RECORD_HISTORIES=<dir>)
// must replay against today's workflow code without a nondeterminism error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { bundleWorkflows } from './helpers/temporal-server';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { repoRoot } from '../core/paths';

const dir = path.join(repoRoot, 'test', 'fixtures', 'histories');

test('stored evolution and iteration histories replay against the current workflow code', async () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length >= 2, 'histories of an evolution and its iterations are stored');
  const workflowBundle = await bundleWorkflows();
  for (const file of files) {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
    await Worker.runReplayHistory({ workflowBundle }, history, file.replace(/\.json$/, '').replace(/__/g, '/'));
  }
});
