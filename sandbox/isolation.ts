// Which isolation this machine supports (probed once per process) and how a sandboxed child is started
// with it: the wrapper chain (setpriv, prlimit, unshare), Node's permission flags and a scrubbed environment.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvoError } from '../core/errors';
import { repoRoot } from '../core/paths';
import type { SandboxOptions } from './options';

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

/** Environment names the caller may not pass: they would change how node starts. */
const REFUSED_ENV = new Set(['NODE_OPTIONS']);

interface Tools {
  setpriv?: string;
  prlimit?: string;
  unshare?: string;
}

/** How this machine's children are wrapped: what sandboxIsolation reports, and the argv pieces that get it. */
export interface IsolationPlan {
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

async function planIsolation(): Promise<IsolationPlan> {
  const tools: Tools = { setpriv: findTool('setpriv'), prlimit: findTool('prlimit'), unshare: findTool('unshare') };
  const gaps: string[] = [];
  const plan: IsolationPlan = {
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

let planned: Promise<IsolationPlan> | undefined;

/** Probes on first use; every later run reuses the answer. */
export function isolationPlan(): Promise<IsolationPlan> {
  planned ??= planIsolation();
  return planned;
}

/** The isolation mechanisms runInSandbox uses on this machine; log `gaps` at worker start. */
export async function sandboxIsolation(): Promise<SandboxIsolation> {
  return (await isolationPlan()).isolation;
}

function checkedPath(p: string, what: string): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw new EvoError(`sandbox: ${what} must be an absolute path, got ${JSON.stringify(p)}`, 'SANDBOX_CONFIG');
  // Early Node 20 releases split --allow-fs-* values on commas.
  if (p.includes(',')) throw new EvoError(`sandbox: ${what} must not contain a comma: ${p}`, 'SANDBOX_CONFIG');
  return path.resolve(p);
}

function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Only the caller's explicit variables, checked: nothing of the parent's environment is inherited. */
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

/** What one child may touch, checked and made absolute before anything is created or started. */
export interface SandboxAccess {
  script: string;
  /** The child's cwd; also the first of `writes`. */
  scratchDir: string;
  /** Readable paths, without repeats: the repo's dist/, node_modules/, frameworks/, the script, the granted ones. */
  reads: string[];
  /** Writable paths, without repeats: scratchDir and the granted write paths. */
  writes: string[];
  env: Record<string, string>;
}

/** Checks the caller's paths and environment; throws EvoError (SANDBOX_CONFIG) on a bad one. */
export function sandboxAccess(opts: SandboxOptions): SandboxAccess {
  const script = checkedPath(opts.script, 'script');
  const scratchDir = checkedPath(opts.scratchDir, 'scratchDir');
  const writes = [scratchDir, ...(opts.writePaths ?? []).map((p) => checkedPath(p, 'writePaths entry'))];
  const modules = path.join(repoRoot, 'node_modules');
  const reads = [
    path.join(repoRoot, 'dist'),
    modules,
    // The permission model checks real paths: a linked node_modules (a pnpm store, a shared install) is read where it lives.
    realPath(modules),
    path.join(repoRoot, 'frameworks'),
    script,
    ...(opts.readPaths ?? []).map((p) => checkedPath(p, 'readPaths entry')),
    ...writes,
  ];
  return { script, scratchDir, reads: [...new Set(reads)], writes: [...new Set(writes)], env: childEnv(opts.env) };
}

/** The child's argv: parent-death wrapper, rlimits, namespaces, dropped privileges, then node under its permission model. */
export function commandLine(opts: SandboxOptions, plan: IsolationPlan, { script, reads, writes }: SandboxAccess): string[] {
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

