// Test harness: a real Temporal dev server on free ports with a throw-away state dir, sharing one cached
// CLI between test runs (EVOSCALE_TOOLS_DIR, default the repo's .evoscale/tools, which CI caches).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { EvoError } from '../../core/errors';
import { repoRoot } from '../../core/paths';
import { findTemporalBinary } from '../../ops/temporal/binary';
import { ensureSearchAttributes } from '../../ops/temporal/connection';
import { DevServerHandle, startDevServer } from '../../ops/temporal/devserver';

export interface TestServer {
  /** 127.0.0.1:port */
  address: string;
  namespace: string;
  uiPort: number;
  /** Use as EVOSCALE_HOME to make connectClient() and temporalUiUrl() find this server. */
  stateDir: string;
  /** TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE for child processes (workers) under test. */
  env: { TEMPORAL_ADDRESS: string; TEMPORAL_NAMESPACE: string };
  pid(): number;
  /** A client connection to this server (close it when done). */
  connect(): Promise<Connection>;
  /** Stops the server and deletes its state dir. */
  stop(): Promise<void>;
  /** Stops and starts again on the same SQLite file and ports: workflows must survive. */
  restart(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Ports this process handed out already (a port is free until its server binds it). */
const taken = new Set<number>();

/**
 * A free port for a test server, below the ephemeral range. Workers keep reconnecting to a server that
 * restarts on the same ports, and every test file's processes open outgoing connections: any of them can be
 * given an ephemeral port as its own local port between the probe and the server's bind (or, reconnecting to
 * that very port, connect to itself), holding the port the server needs. No outgoing connection takes a
 * port outside the range.
 */
export async function serverPort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    /* not Linux: the usual range */
  }
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * Math.max(1, low - 10_000));
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  return freePort();
}

export interface TestServerOptions {
  namespace?: string;
  /** Server settings for this test's server (e.g. lower history limits), kept across restart(). */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  process.env.EVOSCALE_TOOLS_DIR ??= path.join(repoRoot, '.evoscale', 'tools');
  const namespace = opts.namespace ?? 'default';
  const binary = await findTemporalBinary({ install: true });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-temporal-'));
  const log = (line: string) => console.error(line);

  // Another process can still bind a port between the probe and the server: try a few fresh pairs.
  let handle: DevServerHandle | undefined;
  let port = 0;
  let uiPort = 0;
  for (let attempt = 1; !handle; attempt++) {
    port = await serverPort();
    uiPort = await serverPort();
    try {
      handle = await startDevServer({ stateDir, port, uiPort, namespace, binary, log, dynamicConfig: opts.dynamicConfig });
    } catch (err) {
      const portTrouble = err instanceof EvoError && /in use|bind|address already/i.test(err.message);
      if (!portTrouble || attempt >= 3) {
        fs.rmSync(stateDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  let current: DevServerHandle = handle;

  // Loopback: an https_proxy in the environment (CI) must not capture it.
  const connect = () => Connection.connect({ address: current.address, channelArgs: { 'grpc.enable_http_proxy': 0 } });
  const connection = await connect();
  try {
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }

  return {
    address: current.address,
    namespace,
    uiPort,
    stateDir,
    env: { TEMPORAL_ADDRESS: current.address, TEMPORAL_NAMESPACE: namespace },
    pid: () => current.pid,
    connect,
    async stop() {
      await current.stop();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
    async restart() {
      await current.stop();
      current = await startDevServer({ stateDir, port, uiPort, namespace, binary, log, dynamicConfig: opts.dynamicConfig });
    },
  };
}

/** The project's workflow code bundled once per test file, without the bundler's chatter. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  const quiet = () => {};
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { info: quiet, warn: quiet, error: console.error, debug: quiet, trace: quiet, log: quiet } as never,
  });
}

/**
 * A test file's runs: a real server this process's clients and workers point at (TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE), the workflow code bundled once, and no LLM key from the environment, so runs
 * use the offline catalogue unless a test sets one.
 */
export async function startServerForRuns(opts: Pick<TestServerOptions, 'dynamicConfig'> = {}): Promise<{ server: TestServer; bundle: WorkflowBundleWithSourceMap }> {
  delete process.env.OPENAI_API_KEY;
  delete process.env.OPENAI_BASE_URL;
  const server = await startTestServer(opts);
  Object.assign(process.env, server.env);
  return { server, bundle: await bundleWorkflows() };
}

/** The built CLI (`dist/cli/evo.js`) run against this server: its exit code and output. */
export function evoOn(server: TestServer, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'evo.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...server.env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
