// Traces a validated program to kernel graphs, one per training shape, in a sandboxed child (the block
// is untrusted code), checks what comes back and stores each graph under its content hash.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProgramRejected } from '../core/errors';
import { writeFileAtomic } from '../core/atomic-file';
import { runInSandbox } from '../sandbox/run';
import { SandboxFailure } from '../sandbox/options';
import { checkGraph, type AttentionGraph, type TraceShape } from './graph';

export * from './graph';

const CHILD_SCRIPT = path.join(__dirname, '..', 'sandbox', 'trace-child.js');
const DEFAULT_MEMORY_MB = 2048;

export interface TraceOptions {
  wallTimeoutMs: number;
  memoryMb?: number;
  signal?: AbortSignal;
}

/**
 * The block's graph at each shape, in order. A candidate's fault (a kernel the engine lacks, a graph that
 * depends on values, a throw, a limit) is a ProgramRejected with check 'trace'; anything else is thrown as is.
 */
export async function traceProgram(block: string, shapes: TraceShape[], scratchDir: string, opts: TraceOptions): Promise<AttentionGraph[]> {
  let raw: unknown;
  try {
    raw = await runInSandbox<unknown>({
      script: CHILD_SCRIPT,
      input: { block, shapes },
      scratchDir,
      wallTimeoutMs: opts.wallTimeoutMs,
      memoryMb: opts.memoryMb ?? DEFAULT_MEMORY_MB,
      signal: opts.signal,
    });
  } catch (err) {
    if (err instanceof SandboxFailure && !err.retryable) throw new ProgramRejected(`trace: ${err.message}`, 'trace');
    throw err;
  }
  const graphs = (raw as { graphs?: unknown })?.graphs;
  if (!Array.isArray(graphs) || graphs.length !== shapes.length) throw new ProgramRejected('trace: the tracing child returned no graph for some shape', 'trace');
  try {
    return shapes.map((s, i) => checkGraph(graphs[i], s));
  } catch (err) {
    throw new ProgramRejected(`trace: ${(err as Error).message}`, 'trace');
  }
}

/** Stores a graph as `<hash>.json` in `dir` (atomically; an existing file of that name already holds it). */
export function storeGraph(dir: string, graph: AttentionGraph): string {
  const file = path.join(dir, `${graph.hash}.json`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(file, JSON.stringify(graph));
  }
  return file;
}
