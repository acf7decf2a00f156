// The embedded default Temporal server: `temporal server start-dev` on a SQLite file under the state dir,
// so workflows outlive server restarts; one server per state dir, recorded in a pid file (server.json).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { writeJsonAtomic, readJsonIfExists } from '../../core/atomic-file';
import { EvoError, oneLine } from '../../core/errors';
import { stateDir as defaultStateDir } from '../../core/paths';
import { findTemporalBinary } from './binary';
import { isProcessAlive, withFileLock } from './lock';
import { searchAttributeCliFlags } from '../../contract/search-attributes';

export { SEARCH_ATTRIBUTES } from '../../contract/search-attributes';

export const DEFAULT_PORT = 7233;
const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

export interface DevServerOptions {
  stateDir?: string;
  /** gRPC frontend port; default EVOSCALE_TEMPORAL_PORT or 7233. */
  port?: number;
  /** Web UI port; default EVOSCALE_TEMPORAL_UI_PORT or port + 1000 (8233). */
  uiPort?: number;
  /** Created at launch besides "default"; default TEMPORAL_NAMESPACE or "default". */
  namespace?: string;
  /** Outlive this process (own process group, output only to the log file). */
  detached?: boolean;
  /** The CLI to run; default findTemporalBinary({ install }). */
  binary?: string;
  install?: boolean;
  startTimeoutMs?: number;
  log?: (line: string) => void;
  /** Server settings beyond the defaults, as `--dynamic-config-value key=value` (e.g. lower history limits for a test). */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServerHandle {
  address: string;
  uiUrl: string;
  pid: number;
  namespace: string;
  dbFile: string;
  logFile: string;
  stop(): Promise<void>;
}

/** What server.json records about the running server. */
export interface DevServerInfo {
  pid: number;
  address: string;
  port: number;
  uiPort: number;
  uiUrl: string;
  namespace: string;
  dbFile: string;
  logFile: string;
  binary: string;
  startedAt: string;
}

export function devServerPaths(dir: string = defaultStateDir()) {
  const root = path.join(path.resolve(dir), 'temporal');
  return {
    dir: root,
    db: path.join(root, 'temporal.sqlite'),
    info: path.join(root, 'server.json'),
    log: path.join(root, 'server.log'),
    lock: path.join(root, 'server.lock'),
  };
}

export function readDevServerInfo(dir?: string): DevServerInfo | undefined {
  try {
    return readJsonIfExists<DevServerInfo>(devServerPaths(dir).info);
  } catch {
    return undefined; // unreadable counts as absent: the next start rewrites it
  }
}

function portFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new EvoError(`${name}=${raw} is not a TCP port`);
  return port;
}

export function defaultPorts(): { port: number; uiPort: number } {
  const port = portFromEnv('EVOSCALE_TEMPORAL_PORT') ?? DEFAULT_PORT;
  return { port, uiPort: portFromEnv('EVOSCALE_TEMPORAL_UI_PORT') ?? port + 1000 };
}

/** The pid may have been reused after a reboot: on Linux, insist it is start-dev on our SQLite file. */
function isOurServer(info: DevServerInfo): boolean {
  if (!isProcessAlive(info.pid)) return false;
  let cmdline: string[];
  try {
    cmdline = fs.readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return true;
  }
  return cmdline.includes('start-dev') && cmdline.includes(info.dbFile);
}

/** A plain TCP connect: answers "is anything listening" at once where gRPC would retry until its timeout. */
export function addressListening(address: string, timeoutMs = 2000): Promise<boolean> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when the frontend at `address` serves `namespace`. */
export async function serverAnswers(address: string, namespace: string, timeoutMs = 3000): Promise<boolean> {
  if (!(await addressListening(address, timeoutMs))) return false;
  let connection: Connection | undefined;
  try {
    // Loopback only: keep grpc-js from routing it through an https_proxy set in the environment.
    connection = await Connection.connect({ address, connectTimeout: timeoutMs, channelArgs: { 'grpc.enable_http_proxy': 0 } });
    await connection.withDeadline(Date.now() + timeoutMs, () => connection!.workflowService.describeNamespace({ namespace }));
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new EvoError(`${what} ${port} is in use by another process; stop it or set ${envName}`, 'PORT_IN_USE'));
      } else {
        reject(new EvoError(`cannot use ${what} ${port}: ${oneLine(err)}`));
      }
    });
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve()));
  });
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** SIGTERM lets the server close SQLite cleanly (about 2 s here); a restart before it has exited fails with SQLITE_BUSY. */
async function terminate(pid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  if (await waitGone(pid, 15_000)) return;
  signal('SIGKILL');
  if (!(await waitGone(pid, 10_000))) throw new EvoError(`the Temporal dev server (pid ${pid}) did not exit after SIGKILL`);
}

/** Removes the pid file only if it still names `pid`: a newer server may have replaced it meanwhile. */
function forgetInfo(infoFile: string, pid: number): void {
  let info: DevServerInfo | undefined;
  try {
    info = readJsonIfExists<DevServerInfo>(infoFile);
  } catch {
    info = undefined;
  }
  if (!info || info.pid === pid) fs.rmSync(infoFile, { force: true });
}

function logTail(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const errorLine = [...lines].reverse().find((l) => /^Error:|level=ERROR|panic:/.test(l));
    return (errorLine ?? lines[lines.length - 1] ?? '').slice(0, 400);
  } catch {
    return '';
  }
}

/** Everything `temporal server start-dev` is started with. */
export function devServerArgs(o: { dbFile: string; port: number; uiPort: number; namespace: string; dynamicConfig?: DevServerOptions['dynamicConfig'] }): string[] {
  const namespaces = o.namespace === 'default' ? ['default'] : ['default', o.namespace];
  return [
    'server', 'start-dev',
    '--db-filename', o.dbFile,
    '--ip', '127.0.0.1',
    '--port', String(o.port),
    '--ui-port', String(o.uiPort),
    ...namespaces.flatMap((ns) => ['--namespace', ns]),
    ...searchAttributeCliFlags(),
    // Values are JSON: a string is quoted, a number or boolean is written as it is.
    ...Object.entries(o.dynamicConfig ?? {}).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]),
    '--log-level', 'warn',
  ];
}

/** The CLI reads TEMPORAL_ADDRESS, TEMPORAL_API_KEY, TEMPORAL_TLS… as its own connection settings; a user's
 *  Cloud or cluster settings must not leak into the local server. */
function serverEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
}

function handleFor(info: DevServerInfo, infoFile: string, onStopped?: () => void): DevServerHandle {
  let stopping: Promise<void> | undefined;
  return {
    address: info.address,
    uiUrl: info.uiUrl,
    pid: info.pid,
    namespace: info.namespace,
    dbFile: info.dbFile,
    logFile: info.logFile,
    stop() {
      stopping ??= terminate(info.pid).then(() => {
        forgetInfo(infoFile, info.pid);
        onStopped?.();
      });
      return stopping;
    },
  };
}

/**
 * Starts the embedded server for a state dir and waits until its frontend answers; if the state dir's
 * server is already running, returns a handle to it instead (on whatever ports it was started with).
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServerHandle> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const paths = devServerPaths(opts.stateDir);
  const defaults = defaultPorts();
  const port = opts.port ?? defaults.port;
  const uiPort = opts.uiPort ?? (opts.port !== undefined ? opts.port + 1000 : defaults.uiPort);
  const namespace = opts.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  fs.mkdirSync(paths.dir, { recursive: true });

  const lockOpts = {
    timeoutMs: timeoutMs + 60_000,
    onWait: (pid: number | undefined) => log(`evoscale: waiting for process ${pid ?? '?'} that is starting the Temporal server …`),
  };
  return withFileLock(paths.lock, 'the Temporal dev server to start', lockOpts, async () => {
    const existing = readDevServerInfo(opts.stateDir);
    if (existing && isOurServer(existing)) {
      // Alive: it answers, or it is still starting under a starter that died; give it the same grace.
      const deadline = Date.now() + timeoutMs;
      while (!(await serverAnswers(existing.address, existing.namespace))) {
        if (!isOurServer(existing) || Date.now() > deadline) {
          throw new EvoError(
            `the Temporal dev server (pid ${existing.pid}) for ${paths.dir} does not answer on ${existing.address}; stop it (kill ${existing.pid}) and retry`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      if (existing.port !== port) log(`evoscale: the Temporal server for this state dir already runs on ${existing.address}`);
      return handleFor(existing, paths.info);
    }
    if (existing) fs.rmSync(paths.info, { force: true });

    await assertPortFree(port, 'port', 'EVOSCALE_TEMPORAL_PORT');
    await assertPortFree(uiPort, 'Web UI port', 'EVOSCALE_TEMPORAL_UI_PORT');
    const binary = opts.binary ?? (await findTemporalBinary({ install: opts.install, log }));

    try {
      if (fs.statSync(paths.log).size > LOG_ROTATE_BYTES) fs.renameSync(paths.log, `${paths.log}.1`);
    } catch {
      /* no log yet */
    }
    const args = devServerArgs({ dbFile: paths.db, port, uiPort, namespace, dynamicConfig: opts.dynamicConfig });
    const logFd = fs.openSync(paths.log, 'a');
    fs.writeSync(logFd, `\n--- ${new Date().toISOString()} evoscale starting: ${binary} ${args.join(' ')}\n`);
    const child = spawn(binary, args, {
      cwd: paths.dir,
      env: serverEnv(),
      stdio: ['ignore', logFd, logFd],
      detached: opts.detached === true,
    });
    fs.closeSync(logFd);
    let exit: string | undefined;
    child.once('exit', (code, sig) => (exit = sig ? `signal ${sig}` : `code ${code}`));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (child.pid === undefined) {
      throw new EvoError(`cannot run ${binary}: ${oneLine(await spawnError)}`);
    }
    const pid = child.pid;

    // A server we own (not detached) must not outlive us when the caller forgets to stop it.
    const killOnExit = () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    };
    if (opts.detached) child.unref();
    else process.once('exit', killOnExit);

    const info: DevServerInfo = {
      pid,
      address: `127.0.0.1:${port}`,
      port,
      uiPort,
      uiUrl: `http://127.0.0.1:${uiPort}`,
      namespace,
      dbFile: paths.db,
      logFile: paths.log,
      binary,
      startedAt: new Date().toISOString(),
    };
    writeJsonAtomic(paths.info, info);

    const deadline = Date.now() + timeoutMs;
    let failure: string | undefined;
    while (!(await serverAnswers(info.address, namespace, 2000))) {
      if (exit) failure = `exited during start-up (${exit}): ${logTail(paths.log)}`;
      else if (Date.now() > deadline) failure = `did not answer on ${info.address} within ${Math.round(timeoutMs / 1000)} s`;
      if (failure) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (failure) {
      if (!exit) await terminate(pid).catch(() => undefined);
      forgetInfo(paths.info, pid);
      process.removeListener('exit', killOnExit);
      throw new EvoError(`the Temporal dev server ${failure} (log: ${paths.log})`);
    }
    return handleFor(info, paths.info, () => process.removeListener('exit', killOnExit));
  });
}

/** Stops the state dir's server if one runs; true when a server was stopped. */
export async function stopDevServer(stateDir?: string): Promise<boolean> {
  const paths = devServerPaths(stateDir);
  const info = readDevServerInfo(stateDir);
  if (!info) return false;
  if (!isOurServer(info)) {
    fs.rmSync(paths.info, { force: true });
    return false;
  }
  await terminate(info.pid);
  forgetInfo(paths.info, info.pid);
  return true;
}

export async function devServerStatus(
  stateDir?: string,
): Promise<{ running: boolean; pid?: number; address?: string; uiUrl?: string }> {
  const info = readDevServerInfo(stateDir);
  if (!info || !isOurServer(info)) return { running: false };
  const running = await serverAnswers(info.address, info.namespace);
  return { running, pid: info.pid, address: info.address, uiUrl: info.uiUrl };
}
