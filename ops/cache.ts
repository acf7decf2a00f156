// `evo gc`: keeps the training, data and graph caches and the LLM reply store bounded by what the run archives still refer to.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { archivedDataHashes, archivedProgramHashes } from '../archive';
import { cacheDir, runsDir } from '../core/paths';
import { ReplyStore } from '../propose/llm/replies';
import { readJsonIfExists } from '../core/atomic-file';
import { trainingDir, trainingResultPath } from '../evaluator/evaluate';
import { dataEntries } from '../evaluator/data/prepare';
import { graphStoreDir } from '../trace/graph';

/**
 * A prepared corpus used this recently is kept though no archive names it: a run records its corpus
 * right after preparing it, so a day is far beyond that gap (and spares an `evo evaluate` under way).
 */
const DATA_IN_USE_MS = 24 * 3600 * 1000;

export interface GcReport {
  /** Training results removed (their program is in no run archive). */
  results: number;
  /** Training folders removed (finished, of a removed result, or left by an older layout). */
  folders: number;
  /** Results kept because a run archive holds their program. */
  kept: number;
  /** Prepared corpora removed (`cache/data/`: no run archive names them, nor one derived from them). */
  corpora: number;
  /** Prepared corpora kept: named by a run archive (or the plain corpus of one that is), or used within the last day. */
  keptCorpora: number;
  /** Traced graphs removed from the graph store (`cache/graphs/`): no kept result names them (run archives hold their own copies). */
  graphs: number;
  /** Stored LLM replies removed (their run has no archive any more), and those kept. */
  replies: number;
  keptReplies: number;
  bytes: number;
}

/** A temp file of an atomic write older than this was left by a process that died mid-write. */
const STALE_TEMP_MS = 3600_000;

function sizeOf(p: string): number {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
}

function remove(p: string): number {
  const bytes = sizeOf(p);
  fs.rmSync(p, { recursive: true, force: true });
  return bytes;
}

/**
 * Removes every training result whose program no run archive holds (`evo evaluate` runs, deleted runs)
 * and every training folder nothing will resume from: one whose result is recorded, one that holds a
 * result.json of the older layout (results now live outside the child's folder), and an empty one. A
 * folder with a checkpoint or a scratch folder and no result may belong to a training under way: kept.
 * Then the prepared corpora no run archive names (see collectData).
 */
export function collectGarbage(): GcReport {
  const report: GcReport = { results: 0, folders: 0, kept: 0, corpora: 0, keptCorpora: 0, graphs: 0, replies: 0, keptReplies: 0, bytes: 0 };
  const referenced = archivedProgramHashes();
  const keptGraphs = new Set<string>();
  const resultsDir = cacheDir('results');
  for (const f of fs.existsSync(resultsDir) ? fs.readdirSync(resultsDir) : []) {
    if (!f.endsWith('.json')) continue;
    const file = path.join(resultsDir, f);
    const result = readJsonIfExists<{ program?: unknown; graph?: unknown }>(file);
    if (typeof result?.program === 'string' && referenced.has(result.program)) {
      report.kept++;
      if (typeof result.graph === 'string') keptGraphs.add(result.graph);
      continue;
    }
    report.bytes += remove(file);
    report.results++;
  }
  const trainRoot = cacheDir('train');
  for (const key of fs.existsSync(trainRoot) ? fs.readdirSync(trainRoot) : []) {
    const dir = trainingDir(key);
    const entries = fs.readdirSync(dir);
    const finished = fs.existsSync(trainingResultPath(key)) || entries.includes('result.json');
    const orphaned = !fs.existsSync(trainingResultPath(key)) && !entries.some((e) => e.startsWith('checkpoint') || e === 'scratch');
    if (!finished && !orphaned) continue;
    report.bytes += remove(dir);
    report.folders++;
  }
  collectData(report);
  collectGraphs(report, keptGraphs);
  collectReplies(report);
  return report;
}

/**
 * Removes the traced graphs no kept training result names. A graph written within the last day is
 * kept: a torch training stores its graph when it starts and names it in its result only when done.
 */
function collectGraphs(report: GcReport, kept: Set<string>): void {
  const dir = graphStoreDir();
  const now = Date.now();
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const file = path.join(dir, f);
    if (kept.has(f.replace(/\.json$/, '')) || now - fs.statSync(file).mtimeMs < DATA_IN_USE_MS) continue;
    report.bytes += remove(file);
    report.graphs++;
  }
}

/** Removes the prepared corpora no run archive names and nothing used within DATA_IN_USE_MS. */
function collectData(report: GcReport): void {
  const entries = dataEntries();
  const keep = archivedDataHashes();
  const now = Date.now();
  for (const e of entries) if (now - e.usedAtMs < DATA_IN_USE_MS) keep.add(e.hash);
  // A copy-segment corpus is derived from a plain one, which preparing it again reads first.
  for (const e of entries) if (keep.has(e.hash) && e.derivedFrom) keep.add(e.derivedFrom);
  for (const e of entries) {
    if (keep.has(e.hash)) {
      report.keptCorpora++;
      continue;
    }
    report.bytes += remove(e.dir);
    report.corpora++;
  }
}

/**
 * The reply store keeps every reply of every run that still has an archive folder, whatever its state:
 * a failed or stopped run can be continued (`evo retry`, `evo resume`) as long as it exists, and a reply
 * is small beside the trainings. The replies of a run whose archive is gone are removed, and so are
 * temp files left by a worker killed mid-write.
 */
function collectReplies(report: GcReport): void {
  const store = new ReplyStore();
  for (const runId of store.runs()) {
    const dir = path.join(store.root, runId);
    const files = fs.readdirSync(dir);
    if (!fs.existsSync(runsDir(runId))) {
      report.replies += files.filter((f) => f.endsWith('.json')).length;
      report.bytes += remove(dir);
      continue;
    }
    for (const f of files) {
      const file = path.join(dir, f);
      if (f.endsWith('.json')) report.keptReplies++;
      else if (f.includes('.tmp-') && Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > STALE_TEMP_MS) report.bytes += remove(file);
    }
  }
}
