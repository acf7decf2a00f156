// Runs a compiled entry script (see child.ts) in a locked-down child process, for code that must not be
// trusted: scrubbed environment, Node permission model, no network, memory and wall-clock limits.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { EvoError, ProgramRejected } from '../core/errors';
import { repoRoot } from '../core/paths';
import type { ChildMessage } from './child';

export interface SandboxOptions {
  /** Absolute path of a compiled .js entry that calls serveSandboxedTask. */
  script: string;
  /** JSON-serialisable, delivered to the handler. */
  input: unknown;
  /** The only writable place besides writePaths (created if missing); the child's cwd. */
  scratchDir: string;
  /** Extra readable paths (a data cache, a checkpoint dir) besides the repo's dist/, node_modules/, frameworks/. */
  readPaths?: string[];
  /** Extra writable (and readable) paths, e.g. a checkpoint dir; created if missing. */
  writePaths?: string[];
  /** Hard kill (SIGKILL of the whole process group) when exceeded. */
  wallTimeoutMs: number;
  /** Memory limit in MB: V8 heap cap, RLIMIT_DATA (native and wasm memory) and a resident-size watchdog. */
  memoryMb?: number;
  /**
   * Apply memoryMb as RLIMIT_DATA too (default true). Set false for native GPU backends whose drivers
   * map large private regions up front; the heap cap and the resident-size watchdog still apply.
   */
  limitNativeMemory?: boolean;
  /** Let the child load native addons (tfjs-node, tfjs-node-gpu, webgpu). Off by default. */
  allowAddons?: boolean;
  /** Progress messages from the child. */
  onMessage?: (msg: unknown) => void;
  /** Explicit extra environment (CUDA_VISIBLE_DEVICES, EVOSCALE_BACKEND…); nothing else is inherited. */
  env?: Record<string, string>;
  /** Cancel → kill. */
  signal?: AbortSignal;
}

export type SandboxFailureKind = 'timeout' | 'memory' | 'crashed' | 'killed' | 'task-error';

/** The sandboxed task did not return a result. `stderrTail` holds the end of the child's stderr. */
export class SandboxFailure extends EvoError {
  constructor(
    message: string,
    readonly kind: SandboxFailureKind,
    readonly stderrTail = '',
  ) {
    super(message, 'SANDBOX_FAILURE');
    this.name = 'SandboxFailure';
  }
}

/** Which isolation mechanisms this machine supports (probed once per process). */
export interface SandboxIsolation {
  /** The child runs in a new, empty network namespace: no interface but a downed loopback. */
  network: boolean;
  /** The child runs in a new PID namespace: it can neither see nor signal other processes. */
  pidNamespace: boolean;
  /** All capabilities dropped and no_new_privs set before node starts. */
  capabilities: boolean;
  /** The child's process group dies with the parent (PR_SET_PDEATHSIG). */
  parentDeathKill: boolean;
  /** RLIMIT_DATA and RLIMIT_CORE can be set on the child. */
  rlimits: boolean;
  /** One line per missing mechanism, for logs. */
  gaps: string[];
}

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
/** Environment names the caller may not pass: they would change how node starts. */
const REFUSED_ENV = new Set(['NODE_OPTIONS']);

interface Tools {
  setpriv?: string;
  prlimit?: string;
  unshare?: string;
}

interface Plan {
  isolation: SandboxIsolation;
  /** setpriv --pdeathsig KILL: the first wrapper, so the whole chain dies with the parent. */
  deathWrapper: string[];
  /** prlimit binary when rlimits work. */
  prlimit?: string;
  /** unshare and its flags when namespaces work. */
  unshare: string[];
  /** setpriv dropping privileges right before node. */
  privWrapper: string[];
}

function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Runs `prefix node -e script` with an empty environment; true when it exits 0. */
function probe(prefix: string[], script = '0'): Promise<boolean> {
  const argv = [...prefix, process.execPath, '-e', script];
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { env: {}, timeout: 15_000 }, (err) => resolve(!err));
  });
}

/**
 * In a PID namespace the first process is its init, which ignores signals it has no handler for and turns
 * an abort into a segfault. A shell as init keeps node an ordinary process (it runs node as a child, not
 * through exec) and reports how node died as its exit status (128 + signal).
 */
const SHELL_INIT = ['/bin/sh', '-c', '"$@"; status=$?; exit $status', 'sandbox-init'];

/** Exits 0 only when no network interface has an address (an empty network namespace). */
const NO_NETWORK_SCRIPT = "process.exit(Object.keys(require('os').networkInterfaces()).length === 0 ? 0 : 1)";

async function planIsolation(): Promise<Plan> {
  const tools: Tools = { setpriv: findTool('setpriv'), prlimit: findTool('prlimit'), unshare: findTool('unshare') };
  const gaps: string[] = [];
  const plan: Plan = {
    isolation: { network: false, pidNamespace: false, capabilities: false, parentDeathKill: false, rlimits: false, gaps },
    deathWrapper: [],
    unshare: [],
    privWrapper: [],
  };
  if (tools.setpriv && (await probe([tools.setpriv, '--pdeathsig', 'KILL', '--']))) {
    plan.deathWrapper = [tools.setpriv, '--pdeathsig', 'KILL', '--'];
    plan.isolation.parentDeathKill = true;
  } else {
    gaps.push('setpriv --pdeathsig unavailable: a sandboxed child outlives a parent that dies without cleaning up');
  }
  if (tools.prlimit && (await probe([tools.prlimit, '--core=0', `--data=${8 * 1024 ** 3}`, '--']))) {
    plan.prlimit = tools.prlimit;
    plan.isolation.rlimits = true;
  } else {
    gaps.push('prlimit unavailable: native and wasm memory are bounded only by the resident-size watchdog');
  }
  if (tools.unshare) {
    // As root a plain unshare works; an unprivileged user needs a user namespace to get the others.
    const variants = [
      ['--net', '--pid', '--fork', '--kill-child'],
      ['--user', '--map-root-user', '--net', '--pid', '--fork', '--kill-child'],
      ['--net'],
      ['--user', '--map-root-user', '--net'],
    ];
    for (const flags of variants) {
      const init = flags.includes('--pid') ? SHELL_INIT : [];
      if (await probe([tools.unshare, ...flags, '--', ...init], NO_NETWORK_SCRIPT)) {
        plan.unshare = [tools.unshare, ...flags, '--'];
        plan.isolation.network = true;
        plan.isolation.pidNamespace = flags.includes('--pid');
        break;
      }
    }
  }
  if (!plan.isolation.network) gaps.push('unshare --net does not work here: the child can reach the network');
  if (!plan.isolation.pidNamespace) gaps.push('no PID namespace: the child can signal processes of the same user');
  if (tools.setpriv) {
    const full = [tools.setpriv, '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--'];
    const nnp = [tools.setpriv, '--no-new-privs', '--'];
    if (await probe([...plan.unshare, ...full])) {
      plan.privWrapper = full;
      plan.isolation.capabilities = true;
    } else if (await probe([...plan.unshare, ...nnp])) {
      plan.privWrapper = nnp;
    }
  }
  if (!plan.isolation.capabilities) gaps.push('capabilities are not dropped (setpriv missing or refused)');
  if (!fs.existsSync('/proc/self/status')) gaps.push('no /proc: the resident-size memory watchdog cannot see the child');
  return plan;
}

let planned: Promise<Plan> | undefined;

function isolationPlan(): Promise<Plan> {
  planned ??= planIsolation();
  return planned;
}

/** The isolation mechanisms runInSandbox uses on this machine; log `gaps` at worker start. */
export async function sandboxIsolation(): Promise<SandboxIsolation> {
  return (await isolationPlan()).isolation;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 600) return `${Number(s.toFixed(1))} s`;
  if (s < 7200) return `${Number((s / 60).toFixed(1))} min`;
  return `${Number((s / 3600).toFixed(1))} h`;
}

function checkedPath(p: string, what: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw new EvoError(`sandbox: ${what} must be an absolute path, got ${JSON.stringify(p)}`, 'SANDBOX_CONFIG');
  // Early Node 20 releases split --allow-fs-* values on commas.
  if (p.includes(',')) throw new EvoError(`sandbox: ${what} must not contain a comma: ${p}`, 'SANDBOX_CONFIG');
  return path.resolve(p);
}

function childEnv(extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || REFUSED_ENV.has(key) || typeof value !== 'string') {
      throw new EvoError(`sandbox: environment variable ${JSON.stringify(key)} cannot be passed to the child`, 'SANDBOX_CONFIG');
    }
    env[key] = value;
  }
  return env;
}

function commandLine(opts: SandboxOptions, plan: Plan, script: string, reads: string[], writes: string[]): string[] {
  const nodeArgs = ['--experimental-permission', '--no-warnings', '--disable-proto=throw'];
  for (const p of reads) nodeArgs.push(`--allow-fs-read=${p}`);
  for (const p of writes) nodeArgs.push(`--allow-fs-write=${p}`);
  if (opts.allowAddons) nodeArgs.push('--allow-addons');
  if (opts.memoryMb !== undefined) nodeArgs.push(`--max-old-space-size=${Math.max(16, Math.floor(opts.memoryMb))}`);
  const limits: string[] = [];
  if (plan.prlimit) {
    limits.push(plan.prlimit, '--core=0');
    if (opts.memoryMb !== undefined && opts.limitNativeMemory !== false) limits.push(`--data=${Math.floor(opts.memoryMb * 1024 * 1024)}`);
    limits.push('--');
  }
  const init = plan.isolation.pidNamespace ? SHELL_INIT : [];
  return [...plan.deathWrapper, ...limits, ...plan.unshare, ...plan.privWrapper, ...init, process.execPath, ...nodeArgs, script];
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

type Outcome = { kind: 'result'; value: unknown } | { kind: 'error'; message: string; check?: string };

/**
 * Runs `opts.script` sandboxed and returns what its handler returned. Throws ProgramRejected when the
 * handler threw one (its check kept), SandboxFailure for every other way the child fails, and EvoError
 * for a bad configuration. The child can neither hang nor crash the parent: every message is bounded and
 * parsed defensively, and the wall clock kills the whole process group.
 */
export async function runInSandbox<T>(opts: SandboxOptions): Promise<T> {
  if (!Number.isFinite(opts.wallTimeoutMs) || opts.wallTimeoutMs <= 0) {
    throw new EvoError(`sandbox: wallTimeoutMs must be a positive number, got ${opts.wallTimeoutMs}`, 'SANDBOX_CONFIG');
  }
  if (opts.memoryMb !== undefined && !(opts.memoryMb > 0)) {
    throw new EvoError(`sandbox: memoryMb must be positive, got ${opts.memoryMb}`, 'SANDBOX_CONFIG');
  }
  const script = checkedPath(opts.script, 'script');
  const scratchDir = checkedPath(opts.scratchDir, 'scratchDir');
  const writes = [scratchDir, ...(opts.writePaths ?? []).map((p) => checkedPath(p, 'writePaths entry'))];
  const reads = [
    path.join(repoRoot, 'dist'),
    path.join(repoRoot, 'node_modules'),
    path.join(repoRoot, 'frameworks'),
    script,
    ...(opts.readPaths ?? []).map((p) => checkedPath(p, 'readPaths entry')),
    ...writes,
  ];
  const env = childEnv(opts.env);
  // Every line the child sends must start with this nonce. Only the child's own reporting code,
  // loaded before any candidate, holds it: a candidate writing to the channel cannot forge a result.
  const nonce = randomBytes(18).toString('hex');
  const inputText = JSON.stringify({ nonce, input: opts.input ?? null });
  for (const dir of writes) fs.mkdirSync(dir, { recursive: true });
  const plan = await isolationPlan();
  if (opts.signal?.aborted) throw new SandboxFailure('candidate process was cancelled before it started', 'killed');

  const argv = commandLine(opts, plan, script, [...new Set(reads)], [...new Set(writes)]);
  const child = spawn(argv[0], argv.slice(1), {
    cwd: scratchDir,
    env,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    detached: true, // its own process group, so one kill reaches everything it started
  });

  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let outcome: Outcome | undefined;
    let failure: Error | undefined;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let exited = false;
    let killed = false;
    let stderrTail = '';
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const timers: NodeJS.Timeout[] = [];

    const signalGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    };
    const killGroup = (): void => {
      if (!exited) signalGroup();
      if (!killed) {
        killed = true;
        // Should a process hold the pipes open past the kill, settle anyway.
        timers.push(setTimeout(() => settle(), CLOSE_GRACE_MS));
      }
    };
    const failWith = (err: Error): void => {
      if (settled) return;
      if (failure || outcome) return killGroup();
      failure = err;
      killGroup();
    };

    const settle = (): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      clearInterval(watchdog);
      opts.signal?.removeEventListener('abort', onAbort);
      if (!exited) signalGroup();
      // An outcome that arrived wins over what happened after it (a late timeout, a slow exit).
      if (outcome?.kind === 'result') return resolve(outcome.value as T);
      if (outcome?.kind === 'error') {
        if (outcome.check !== undefined) return reject(new ProgramRejected(outcome.message, outcome.check));
        if (OOM_PATTERN.test(outcome.message)) {
          return reject(new SandboxFailure(`candidate process ran out of memory${limitText()}: ${outcome.message}`, 'memory', stderrTail));
        }
        return reject(new SandboxFailure(outcome.message, 'task-error', stderrTail));
      }
      reject(failure ?? exitFailure());
    };

    const limitText = (): string => (opts.memoryMb !== undefined ? ` (limit ${opts.memoryMb} MB)` : '');

    const exitFailure = (): SandboxFailure => {
      if (OOM_PATTERN.test(stderrTail)) return new SandboxFailure(`candidate process ran out of memory${limitText()}`, 'memory', stderrTail);
      let signal: string | undefined = exitSignal ?? undefined;
      // The namespace's shell init reports node's death by signal n as exit status 128 + n.
      if (!signal && plan.isolation.pidNamespace && exitCode !== null && exitCode > 128 && exitCode < 128 + 65) {
        signal = signalName(exitCode - 128);
      }
      if (signal === 'SIGKILL') return new SandboxFailure('candidate process was killed (out of memory?)', 'killed', stderrTail);
      if (signal) return new SandboxFailure(`candidate process crashed with ${signal} before returning a result`, 'crashed', stderrTail);
      return new SandboxFailure(`candidate process exited with code ${exitCode} before returning a result`, 'crashed', stderrTail);
    };

    const handleLine = (line: string): void => {
      if (outcome) return; // anything after the outcome is ignored
      if (!line.startsWith(nonce + ' ')) {
        return failWith(new ProgramRejected('tamper: the candidate wrote to the sandbox\'s report channel (an unauthenticated message)', 'tamper'));
      }
      let msg: ChildMessage;
      try {
        msg = JSON.parse(line.slice(nonce.length + 1)) as ChildMessage;
      } catch {
        return failWith(new SandboxFailure('candidate process sent a malformed message (not JSON)', 'crashed', stderrTail));
      }
      if (typeof msg !== 'object' || msg === null) {
        return failWith(new SandboxFailure('candidate process sent a malformed message (not an object)', 'crashed', stderrTail));
      }
      if (msg.t === 'progress') {
        try {
          opts.onMessage?.(msg.m);
        } catch (err) {
          failWith(err instanceof Error ? err : new Error(String(err)));
        }
      } else if (msg.t === 'result') {
        outcome = { kind: 'result', value: msg.v };
      } else if (msg.t === 'error' && typeof msg.message === 'string') {
        outcome = { kind: 'error', message: msg.message.split('\n')[0].slice(0, 2000), check: typeof msg.check === 'string' ? msg.check : undefined };
      } else {
        return failWith(new SandboxFailure('candidate process sent a malformed message (unknown type)', 'crashed', stderrTail));
      }
      if (outcome && !exited) timers.push(setTimeout(killGroup, EXIT_GRACE_MS));
    };

    const onMessageData = (chunk: Buffer): void => {
      let start = 0;
      while (!failure && !outcome && start < chunk.length) {
        const nl = chunk.indexOf(10, start);
        const end = nl < 0 ? chunk.length : nl;
        pendingBytes += end - start;
        if (pendingBytes > MAX_MESSAGE_BYTES) {
          pending = [];
          return failWith(new SandboxFailure(`candidate process sent a message over ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB`, 'crashed', stderrTail));
        }
        pending.push(chunk.subarray(start, end));
        if (nl < 0) return;
        const line = Buffer.concat(pending).toString('utf8');
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        handleLine(line);
      }
    };

    const onAbort = (): void => failWith(new SandboxFailure('candidate process was cancelled', 'killed', stderrTail));

    const memoryMb = opts.memoryMb;
    const watchdog =
      memoryMb === undefined
        ? undefined
        : setInterval(() => {
            const rss = child.pid === undefined ? 0 : treeRssMb(child.pid);
            if (rss > memoryMb) {
              failWith(new SandboxFailure(`candidate process exceeded the ${memoryMb} MB memory limit (resident ${Math.round(rss)} MB)`, 'memory', stderrTail));
            }
          }, WATCHDOG_INTERVAL_MS);

    timers.push(
      setTimeout(
        () => failWith(new SandboxFailure(`candidate process exceeded the ${formatDuration(opts.wallTimeoutMs)} wall-clock limit`, 'timeout', stderrTail)),
        opts.wallTimeoutMs,
      ),
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      failWith(new EvoError(`sandbox: could not start ${argv[0]}: ${err.message}`, 'SANDBOX_SPAWN'));
      settle();
    });
    child.on('exit', (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      // Anything it left in its group goes too (right away, before its id could be reused); the pipes
      // then close and 'close' settles.
      signalGroup();
    });
    child.on('close', () => settle());

    const messages = child.stdio[3] as Readable;
    messages.on('data', onMessageData);
    messages.on('error', () => undefined);
    child.stdout?.on('data', () => undefined); // drained so a chatty child never blocks on a full pipe
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    child.stdin?.on('error', () => undefined); // EPIPE when the child exits without reading its input
    child.stdin?.end(inputText);
  });
}
