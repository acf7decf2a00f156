// Runs one task in a locked-down child process (see child.ts for the child's side, isolation.ts for how it
// is locked down): delivers the input, reads the authenticated messages, enforces the wall-clock and memory
// limits and turns however the child ends into a result or a classified failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Readable } from 'node:stream';
import { EvoError, ProgramRejected, type ErrorFault } from '../core/errors';
import type { ChildMessage } from './child';
import { commandLine, isolationPlan, sandboxAccess, type IsolationPlan, type SandboxAccess } from './isolation';
import { SandboxFailure, type SandboxOptions } from './options';

/** Longest accepted message line from the child; bigger results belong in files under scratchDir. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const STDERR_TAIL_BYTES = 8 * 1024;
/** After the outcome arrives, how long the child may take to exit before it is killed. */
const EXIT_GRACE_MS = 5000;
/** After a SIGKILL, how long to wait for the pipes to close before settling anyway. */
const CLOSE_GRACE_MS = 5000;
const WATCHDOG_INTERVAL_MS = 500;
/** Patterns of out-of-memory deaths on stderr or in task errors (V8 heap, array buffers, wasm memory). */
const OOM_PATTERN = /heap out of memory|Reached heap limit|Fatal process out of memory|allocation failed|Cannot allocate Wasm memory|WebAssembly\.Memory\(\): could not allocate|Out of memory/i;

/**
 * Runs `opts.script` sandboxed and returns what its handler returned. Throws ProgramRejected when the
 * handler threw one (its check kept), SandboxFailure for every other way the child fails, and EvoError
 * for a bad configuration. The child can neither hang nor crash the parent: every message is bounded and
 * parsed defensively, and the wall clock kills the whole process group.
 */
export async function runInSandbox<T>(opts: SandboxOptions): Promise<T> {
  checkLimits(opts);
  const access = sandboxAccess(opts);
  // Every line the child sends must start with this nonce. Only the child's own reporting code,
  // loaded before any candidate, holds it: a candidate writing to the channel cannot forge a result.
  const nonce = randomBytes(18).toString('hex');
  const inputText = JSON.stringify({ nonce, input: opts.input ?? null });
  for (const dir of access.writes) fs.mkdirSync(dir, { recursive: true });
  const plan = await isolationPlan();
  if (opts.signal?.aborted) throw new SandboxFailure('candidate process was cancelled before it started', 'killed');
  return new SandboxRun<T>(opts, plan, access, nonce).start(inputText);
}

function checkLimits(opts: SandboxOptions): void {
  if (!Number.isFinite(opts.wallTimeoutMs) || opts.wallTimeoutMs <= 0) {
    throw new EvoError(`sandbox: wallTimeoutMs must be a positive number, got ${opts.wallTimeoutMs}`, 'SANDBOX_CONFIG');
  }
  if (opts.memoryMb !== undefined && !(opts.memoryMb > 0)) {
    throw new EvoError(`sandbox: memoryMb must be positive, got ${opts.memoryMb}`, 'SANDBOX_CONFIG');
  }
}

type Outcome = { kind: 'result'; value: unknown } | { kind: 'error'; message: string; check?: string };

/**
 * One started child, from spawn to settle. The promise settles exactly once, after the child's pipes
 * close (or CLOSE_GRACE_MS after a kill): with the outcome the child reported if there was one, else
 * with the first failure seen (tamper, bad message, timeout, memory, cancel), else with how it exited.
 */
class SandboxRun<T> {
  private readonly child: ChildProcess;
  /** The first program of the command line, for a spawn error. */
  private readonly command: string;
  private resolve!: (value: T) => void;
  private reject!: (err: Error) => void;
  private settled = false;
  /** What the child reported; once set, nothing it sends or does afterwards changes the result. */
  private outcome: Outcome | undefined;
  /** The first failure seen before an outcome; later ones only kill. */
  private failure: Error | undefined;
  private exited = false;
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;
  private killed = false;
  private stderrTail = '';
  /** The unfinished message line, in pieces, and its size so far. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private watchdog: NodeJS.Timeout | undefined;
  /** The largest resident size the watchdog saw, in MB. */
  private peakRssMb = 0;

  constructor(
    private readonly opts: SandboxOptions,
    private readonly plan: IsolationPlan,
    access: SandboxAccess,
    private readonly nonce: string,
  ) {
    const argv = commandLine(opts, plan, access);
    this.command = argv[0];
    this.child = spawn(argv[0], argv.slice(1), {
      cwd: access.scratchDir,
      env: access.env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true, // its own process group, so one kill reaches everything it started
    });
  }

  /** Arms the limits, wires the pipes and sends the input; resolves with the handler's result. */
  start(inputText: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.armWatchdogs();
      this.opts.signal?.addEventListener('abort', this.onAbort, { once: true });
      const child = this.child;
      child.on('error', (err) => {
        this.failWith(new EvoError(`sandbox: could not start ${this.command}: ${err.message}`, 'SANDBOX_SPAWN'));
        this.settle();
      });
      child.on('exit', (code, signal) => this.onExit(code, signal));
      child.on('close', () => this.settle());
      const messages = child.stdio[3] as Readable;
      messages.on('data', (chunk: Buffer) => this.onMessageData(chunk));
      messages.on('error', () => undefined);
      child.stdout?.on('data', () => undefined); // drained so a chatty child never blocks on a full pipe
      child.stderr?.on('data', (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
      });
      child.stdin?.on('error', () => undefined); // EPIPE when the child exits without reading its input
      child.stdin?.end(inputText);
    });
  }

  /** The resident-size watchdog (when there is a memory limit) and the wall clock. */
  private armWatchdogs(): void {
    const memoryMb = this.opts.memoryMb;
    if (memoryMb !== undefined) {
      this.watchdog = setInterval(() => {
        const rss = this.child.pid === undefined ? 0 : treeRssMb(this.child.pid);
        this.peakRssMb = Math.max(this.peakRssMb, rss);
        if (rss > memoryMb) {
          this.failWith(new SandboxFailure(`candidate process exceeded the ${memoryMb} MB memory limit (resident ${Math.round(rss)} MB)`, 'memory', this.stderrTail));
        }
      }, WATCHDOG_INTERVAL_MS);
    }
    const wallTimeoutMs = this.opts.wallTimeoutMs;
    this.timers.push(
      setTimeout(
        () => this.failWith(new SandboxFailure(`candidate process exceeded the ${formatDuration(wallTimeoutMs)} wall-clock limit`, 'timeout', this.stderrTail)),
        wallTimeoutMs,
      ),
    );
  }

  private readonly onAbort = (): void => this.failWith(new SandboxFailure('candidate process was cancelled', 'killed', this.stderrTail));

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true;
    this.exitCode = code;
    this.exitSignal = signal;
    // Anything it left in its group goes too (right away, before its id could be reused); the pipes
    // then close and 'close' settles.
    this.signalGroup();
  }

  /** Splits fd 3 into lines, refusing any line over MAX_MESSAGE_BYTES before it is buffered. */
  private onMessageData(chunk: Buffer): void {
    let start = 0;
    while (!this.failure && !this.outcome && start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      this.pendingBytes += end - start;
      if (this.pendingBytes > MAX_MESSAGE_BYTES) {
        this.pending = [];
        return this.failWith(new SandboxFailure(`candidate process sent a message over ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB`, 'crashed', this.stderrTail));
      }
      this.pending.push(chunk.subarray(start, end));
      if (nl < 0) return;
      const line = Buffer.concat(this.pending).toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
      this.handleLine(line);
    }
  }

  private handleLine(line: string): void {
    if (this.outcome) return; // anything after the outcome is ignored
    if (!line.startsWith(this.nonce + ' ')) {
      return this.failWith(new ProgramRejected('tamper: the candidate wrote to the sandbox\'s report channel (an unauthenticated message)', 'tamper'));
    }
    let msg: ChildMessage;
    try {
      msg = JSON.parse(line.slice(this.nonce.length + 1)) as ChildMessage;
    } catch {
      return this.failWith(this.malformed('not JSON'));
    }
    if (typeof msg !== 'object' || msg === null) return this.failWith(this.malformed('not an object'));
    if (msg.t === 'progress') {
      try {
        this.opts.onMessage?.(msg.m);
      } catch (err) {
        this.failWith(err instanceof Error ? err : new Error(String(err)));
      }
    } else if (msg.t === 'result') {
      this.outcome = { kind: 'result', value: msg.v };
    } else if (msg.t === 'error' && typeof msg.message === 'string') {
      this.outcome = { kind: 'error', message: msg.message.split('\n')[0].slice(0, 2000), check: typeof msg.check === 'string' ? msg.check : undefined };
    } else {
      return this.failWith(this.malformed('unknown type'));
    }
    if (this.outcome && !this.exited) this.timers.push(setTimeout(() => this.killGroup(), EXIT_GRACE_MS));
  }

  private malformed(why: string): SandboxFailure {
    return new SandboxFailure(`candidate process sent a malformed message (${why})`, 'crashed', this.stderrTail);
  }

  /** Records the first failure (unless an outcome came first) and kills the child. */
  private failWith(err: Error): void {
    if (this.settled) return;
    if (this.failure || this.outcome) return this.killGroup();
    this.failure = err;
    this.killGroup();
  }

  private killGroup(): void {
    if (!this.exited) this.signalGroup();
    if (!this.killed) {
      this.killed = true;
      // Should a process hold the pipes open past the kill, settle anyway.
      this.timers.push(setTimeout(() => this.settle(), CLOSE_GRACE_MS));
    }
  }

  private signalGroup(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // the group is already gone
    }
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    for (const t of this.timers) clearTimeout(t);
    clearInterval(this.watchdog);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (!this.exited) this.signalGroup();
    // An outcome that arrived wins over what happened after it (a late timeout, a slow exit).
    const outcome = this.outcome;
    if (outcome?.kind === 'result') return this.resolve(outcome.value as T);
    if (outcome?.kind === 'error') return this.reject(this.taskFailure(outcome.message, outcome.check));
    this.reject(this.failure ?? this.exitFailure());
  }

  /** The handler threw: a ProgramRejected keeps its check; an out-of-memory error is a memory failure. */
  private taskFailure(message: string, check: string | undefined): Error {
    if (check !== undefined) return new ProgramRejected(message, check);
    if (OOM_PATTERN.test(message)) {
      return new SandboxFailure(`candidate process ran out of memory${this.limitText()}: ${message}`, 'memory', this.stderrTail, this.memoryFault());
    }
    return new SandboxFailure(message, 'task-error', this.stderrTail);
  }

  /** The child ended without an outcome or a failure of ours: say how, from its exit and its stderr. */
  private exitFailure(): SandboxFailure {
    if (OOM_PATTERN.test(this.stderrTail)) return new SandboxFailure(`candidate process ran out of memory${this.limitText()}`, 'memory', this.stderrTail, this.memoryFault());
    let signal: string | undefined = this.exitSignal ?? undefined;
    const code = this.exitCode;
    // The namespace's shell init reports node's death by signal n as exit status 128 + n.
    if (!signal && this.plan.isolation.pidNamespace && code !== null && code > 128 && code < 128 + 65) {
      signal = signalName(code - 128);
    }
    // Not our kill (ours set a failure first): the kernel's OOM killer or an operator. It is the
    // candidate's fault only when the child was already near its own memory limit.
    if (signal === 'SIGKILL') return new SandboxFailure('candidate process was killed (out of memory?)', 'killed', this.stderrTail, this.nearLimit() ? 'candidate' : 'infrastructure');
    if (signal) return new SandboxFailure(`candidate process crashed with ${signal} before returning a result`, 'crashed', this.stderrTail);
    return new SandboxFailure(`candidate process exited with code ${code} before returning a result`, 'crashed', this.stderrTail);
  }

  /** Out of memory under the sandbox's own limit is the candidate's doing; without one, the machine ran out. */
  private memoryFault(): ErrorFault {
    return this.opts.memoryMb !== undefined ? 'candidate' : 'infrastructure';
  }

  /** The watchdog saw the child at half its memory limit or more. */
  private nearLimit(): boolean {
    return this.opts.memoryMb !== undefined && this.peakRssMb >= this.opts.memoryMb / 2;
  }

  private limitText(): string {
    return this.opts.memoryMb !== undefined ? ` (limit ${this.opts.memoryMb} MB)` : '';
  }
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 600) return `${Number(s.toFixed(1))} s`;
  if (s < 7200) return `${Number((s / 60).toFixed(1))} min`;
  return `${Number((s / 3600).toFixed(1))} h`;
}

/** Resident memory of a process and its descendants, in MB (Linux /proc; 0 where unreadable). */
function treeRssMb(pid: number): number {
  let kb = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+)/m.exec(status);
      if (m) kb += Number(m[1]);
      const children = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      if (children) for (const c of children.split(/\s+/)) stack.push(Number(c));
    } catch {
      // the process is gone or /proc is not there
    }
  }
  return kb / 1024;
}

function signalName(signal: NodeJS.Signals | number): string {
  if (typeof signal === 'string') return signal;
  const entry = Object.entries(os.constants.signals).find(([, n]) => n === signal);
  return entry ? entry[0] : `signal ${signal}`;
}
