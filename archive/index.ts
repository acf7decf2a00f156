// The run archive on disk, `runs/<workflowId>/`: every candidate's code and the kernel graphs the torch
// engine trained (content-addressed), per-iteration metrics with lineage, and summary.json rewritten
// after each iteration.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runsDir } from '../core/paths';
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from '../core/atomic-file';
import { EvoError } from '../core/errors';
import { hashText, programFromText, type Framework, type Program } from '../core/program';
import { graphHash, graphStoreDir, type AttentionGraph } from '../trace/graph';
import type { IterationRecord, RunState, RunSummary } from '../contract';

/** Workflow IDs contain '/' for child iterations; only the run's own ID names a folder. */
export function runDir(runId: string): string {
  if (!/^[\w.-]+$/.test(runId)) throw new EvoError(`run id "${runId}" cannot name a folder (use letters, digits, '.', '_' and '-')`, 'BAD_RUN_ID');
  return runsDir(runId);
}

export function programPath(runId: string, hash: string): string {
  return path.join(runDir(runId), 'programs', `${hash}.ts`);
}

export function saveProgram(runId: string, program: Program): string {
  const file = programPath(runId, program.hash);
  if (!fs.existsSync(file)) writeFileAtomic(file, program.source);
  return file;
}

/** Load a stored program and check it still has the hash it is filed under. */
export function loadProgram(runId: string, framework: Framework, hash: string): Program {
  const file = programPath(runId, hash);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new EvoError(`program ${hash} is missing from the run archive (${path.relative(process.cwd(), file)})`, 'MISSING_PROGRAM');
  }
  if (hashText(text) !== hash) throw new EvoError(`program file ${file} does not match its hash ${hash}`, 'CORRUPT_PROGRAM');
  const program = programFromText(framework, text, file);
  if (program.hash !== hash) throw new EvoError(`program file ${file} was not produced from the ${framework} template`, 'CORRUPT_PROGRAM');
  return program;
}

export function graphPath(runId: string, hash: string): string {
  return path.join(runDir(runId), 'graphs', `${hash}.json`);
}

/**
 * Files a traced graph in the run archive from the state folder's graph store, where the training that
 * traced it put it, after checking it still has the hash it is filed under.
 */
export function archiveGraph(runId: string, hash: string): string {
  const file = graphPath(runId, hash);
  if (fs.existsSync(file)) return file;
  const stored = path.join(graphStoreDir(), `${hash}.json`);
  let text: string;
  try {
    text = fs.readFileSync(stored, 'utf8');
  } catch {
    throw new EvoError(`graph ${hash} is missing from the graph store (${path.relative(process.cwd(), stored)}); device workers and the control worker must share EVOSCALE_HOME`, 'MISSING_GRAPH');
  }
  let matches = false;
  try {
    matches = graphHash(JSON.parse(text) as AttentionGraph) === hash;
  } catch {
    // not JSON: corrupt
  }
  if (!matches) throw new EvoError(`graph file ${stored} does not match its hash ${hash}`, 'CORRUPT_GRAPH');
  writeFileAtomic(file, text);
  return file;
}

function iterationRecordPath(runId: string, iteration: number): string {
  return path.join(runDir(runId), 'iterations', `iter-${String(iteration).padStart(3, '0')}.json`);
}

/** An iteration's record, and the graphs its points and screen name (trained on torch) beside its program. */
export function writeIterationRecord(runId: string, record: IterationRecord): void {
  for (const graph of [...record.points.map((p) => p.graph), record.screen?.graph]) if (graph) archiveGraph(runId, graph);
  writeJsonAtomic(iterationRecordPath(runId, record.iteration), record);
}

/**
 * The run's summary: the workflow's state with each iteration's full record from `iterations/`, which
 * the iteration's last step wrote before the workflow counted it. (A whole summary, as activities
 * scheduled by the workflow code before its state was compact passed, reads the same records.)
 */
export function composeSummary(state: RunState | RunSummary): RunSummary {
  const { workflowId, framework, profile, status, best, usage, reason, dataHash } = state;
  const iterations = state.iterations.map(({ iteration }) => {
    const file = iterationRecordPath(workflowId, iteration);
    const record = readJsonIfExists<IterationRecord>(file);
    if (!record) throw new EvoError(`iteration ${iteration}'s record is missing from the run archive (${path.relative(process.cwd(), file)}): every host must share EVOSCALE_RUNS_DIR`, 'MISSING_RECORD');
    return record;
  });
  return { workflowId, framework, profile, status, iterations, best, usage, ...(reason !== undefined ? { reason } : {}), ...(dataHash !== undefined ? { dataHash } : {}) };
}

export function writeSummary(summary: RunSummary): void {
  writeJsonAtomic(path.join(runDir(summary.workflowId), 'summary.json'), summary);
}

/** One training's loss curve as the archive files it: `curves/<programHash>/<size>-seed<seed>.json`. */
export interface TrainingCurve {
  programHash: string;
  size: string;
  seed: number;
  steps: number;
  curve: { step: number; trainLoss: number; valLoss?: number }[];
}

export function writeTrainingCurve(runId: string, c: TrainingCurve): void {
  writeJsonAtomic(path.join(runDir(runId), 'curves', c.programHash, `${c.size}-seed${c.seed}.json`), c);
}

/** Every curve the run has filed for these programs (trainings still running have none yet). */
export function readTrainingCurves(runId: string, programHashes: string[]): TrainingCurve[] {
  const out: TrainingCurve[] = [];
  for (const hash of new Set(programHashes)) {
    const dir = path.join(runDir(runId), 'curves', hash);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).sort()) {
      const c = name.endsWith('.json') ? readJsonIfExists<TrainingCurve>(path.join(dir, name)) : undefined;
      if (c) out.push(c);
    }
  }
  return out;
}

/** The last summary.json the run wrote, or null before its first iteration finished. */
export function readSummary(runId: string): RunSummary | null {
  return readJsonIfExists<RunSummary>(path.join(runDir(runId), 'summary.json')) ?? null;
}

/** A stored program's source text, or null when the archive does not hold it. */
export function readProgramSource(runId: string, hash: string): string | null {
  const file = programPath(runId, hash);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
}

/** Where `evo report` writes a run's report unless told otherwise. */
export function reportPath(runId: string): string {
  return path.join(runDir(runId), 'report.html');
}

/** Every program any run archive holds (iterations and refused attempts alike): what the training cache may keep. */
export function archivedProgramHashes(): Set<string> {
  const hashes = new Set<string>();
  const root = runsDir();
  if (!fs.existsSync(root)) return hashes;
  for (const run of fs.readdirSync(root, { withFileTypes: true })) {
    const programs = path.join(root, run.name, 'programs');
    if (!run.isDirectory() || !fs.existsSync(programs)) continue;
    for (const f of fs.readdirSync(programs)) if (f.endsWith('.ts')) hashes.add(f.slice(0, -3));
  }
  return hashes;
}

/** The prepared corpora (`cache/data/<hash>`) the run archives name in their summary.json: what the data cache must keep. */
export function archivedDataHashes(): Set<string> {
  const hashes = new Set<string>();
  const root = runsDir();
  if (!fs.existsSync(root)) return hashes;
  for (const run of fs.readdirSync(root, { withFileTypes: true })) {
    if (!run.isDirectory()) continue;
    const hash = readJsonIfExists<RunSummary>(path.join(root, run.name, 'summary.json'))?.dataHash;
    if (typeof hash === 'string') hashes.add(hash);
  }
  return hashes;
}
