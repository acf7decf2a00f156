// The embedded Temporal server end to end: start, idempotent start, port clash, restart on the same
// SQLite file, detached start, stop; plus how connection settings come from the environment.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Client } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { EvoError } from '../core/errors';
import { repoRoot } from '../core/paths';
import { findTemporalBinary } from '../ops/temporal/binary';
import { connectClient, temporalTarget, temporalUiUrl } from '../ops/temporal/connection';
import { devServerPaths, devServerStatus, SEARCH_ATTRIBUTES, startDevServer, stopDevServer } from '../ops/temporal/devserver';
import { isProcessAlive } from '../ops/temporal/lock';
import { freePort, startTestServer, TestServer } from './helpers/temporal-server';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-temporal-test-'));
process.env.EVOSCALE_HOME = path.join(scratch, 'home');
process.env.EVOSCALE_TOOLS_DIR ??= path.join(repoRoot, '.evoscale', 'tools');
for (const name of Object.keys(process.env)) if (name.startsWith('TEMPORAL_') && name !== 'TEMPORAL_CLI_PATH') delete process.env[name];
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Processes running start-dev on this SQLite file (Linux /proc), to prove there is exactly one or none. */
function serversOn(dbFile: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes('start-dev') && argv.includes(dbFile) && isProcessAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      /* exited while we looked */
    }
  }
  return pids;
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, val] of Object.entries(v)) if (val === undefined) delete process.env[k]; else process.env[k] = val;
  };
  apply(vars);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    apply(saved);
    throw err;
  }
  if (result instanceof Promise) return result.finally(() => apply(saved)) as T;
  apply(saved);
  return result;
}

describe('embedded Temporal dev server', () => {
  let server: TestServer;
  let dbFile: string;

  before(async () => {
    const t0 = Date.now();
    server = await startTestServer();
    dbFile = devServerPaths(server.stateDir).db;
    console.error(`# test server up in ${Date.now() - t0} ms at ${server.address}`);
  });

  after(async () => {
    if (server && isProcessAlive(server.pid())) await server.stop();
  });

  test('a client connects and lists workflows', async () => {
    const connection = await server.connect();
    try {
      const client = new Client({ connection, namespace: server.namespace });
      const ids: string[] = [];
      for await (const wf of client.workflow.list()) ids.push(wf.workflowId);
      assert.deepEqual(ids, []);
    } finally {
      await connection.close();
    }
  });

  test('the evolution search attributes are registered with their types', async () => {
    const connection = await server.connect();
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: server.namespace });
      for (const key of SEARCH_ATTRIBUTES) {
        assert.equal(customAttributes?.[key.name], encodeSearchAttributeIndexedValueType(key.type), key.name);
      }
    } finally {
      await connection.close();
    }
  });

  test('starting again with the same state dir returns the running server', async () => {
    const port = Number(server.address.split(':')[1]);
    const again = await startDevServer({ stateDir: server.stateDir, port, uiPort: server.uiPort, log: () => undefined });
    assert.equal(again.pid, server.pid());
    assert.equal(again.address, server.address);
    assert.deepEqual(serversOn(dbFile), [server.pid()]);
    const status = await devServerStatus(server.stateDir);
    assert.deepEqual(status, { running: true, pid: server.pid(), address: server.address, uiUrl: `http://127.0.0.1:${server.uiPort}` });
  });

  test('connectClient and temporalUiUrl find the embedded server through the state dir', async () => {
    await withEnv({ EVOSCALE_HOME: server.stateDir }, async () => {
      assert.equal(temporalUiUrl('evo-x/iter-001'), `http://127.0.0.1:${server.uiPort}/namespaces/default/workflows/evo-x%2Fiter-001`);
      const { client, connection, namespace } = await connectClient();
      try {
        assert.equal(namespace, 'default');
        assert.equal(connection.options.address, server.address);
        await client.workflowService.getSystemInfo({});
      } finally {
        await connection.close();
      }
    });
  });

  test('a workflow survives a server restart on the same SQLite file', async () => {
    const pidBefore = server.pid();
    const workflowId = `survives-restart-${Date.now()}`;
    let connection = await server.connect();
    try {
      // No worker serves this type, so the workflow simply stays running.
      const client = new Client({ connection, namespace: server.namespace });
      await client.workflow.start('noWorkerForThisType', { taskQueue: 'no-worker', workflowId });
    } finally {
      await connection.close();
    }
    const t0 = Date.now();
    await server.restart();
    console.error(`# restart (stop + start) took ${Date.now() - t0} ms`);
    assert.notEqual(server.pid(), pidBefore);
    assert.equal(isProcessAlive(pidBefore), false);
    connection = await server.connect();
    try {
      const client = new Client({ connection, namespace: server.namespace });
      const description = await client.workflow.getHandle(workflowId).describe();
      assert.equal(description.status.name, 'RUNNING');
      assert.equal(description.type, 'noWorkerForThisType');
    } finally {
      await connection.close();
    }
  });

  test('stop leaves no server process and frees the ports', async () => {
    const pid = server.pid();
    await server.stop();
    assert.equal(isProcessAlive(pid), false);
    assert.deepEqual(serversOn(dbFile), []);
    const port = Number(server.address.split(':')[1]);
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer().once('error', reject);
      probe.listen({ host: '127.0.0.1', port }, () => probe.close(() => resolve()));
    });
    assert.deepEqual(await devServerStatus(server.stateDir), { running: false });
  });
});

describe('dev server lifecycle edge cases', () => {
  test('a port held by another process gives one clear line and starts nothing', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const stateDir = path.join(scratch, 'clash');
    try {
      await assert.rejects(
        startDevServer({ stateDir, port, uiPort: await freePort(), log: () => undefined }),
        (err: unknown) =>
          err instanceof EvoError &&
          err.message === `port ${port} is in use by another process; stop it or set EVOSCALE_TEMPORAL_PORT`,
      );
      assert.equal(fs.existsSync(devServerPaths(stateDir).info), false);
    } finally {
      blocker.close();
    }
  });

  test('a server that dies during start-up is reported with its own error line', async () => {
    const stateDir = path.join(scratch, 'dies');
    const fake = path.join(scratch, 'fake-temporal');
    fs.writeFileSync(fake, '#!/bin/sh\necho "Error: failed starting server: boom" >&2\nexit 1\n', { mode: 0o755 });
    await assert.rejects(
      startDevServer({ stateDir, port: await freePort(), uiPort: await freePort(), binary: fake, log: () => undefined }),
      /^EvoError: the Temporal dev server exited during start-up \(code 1\): Error: failed starting server: boom \(log: .*server\.log\)$/,
    );
    assert.equal(fs.existsSync(devServerPaths(stateDir).info), false);
  });

  test('a detached server outlives the process that started it; stopDevServer ends it', async () => {
    const stateDir = path.join(scratch, 'detached');
    const port = await freePort();
    const uiPort = await freePort();
    const binary = await findTemporalBinary({ install: true });
    const script = `require(${JSON.stringify(path.join(repoRoot, 'dist/ops/temporal/devserver.js'))})
      .startDevServer(${JSON.stringify({ stateDir, port, uiPort, binary, detached: true })})
      .then((h) => console.log(h.pid), (e) => { console.error(e.message); process.exit(1); });`;
    const pid = Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 90_000 }).trim());
    try {
      assert.ok(isProcessAlive(pid), 'server died with its starter');
      const status = await devServerStatus(stateDir);
      assert.equal(status.running, true);
      assert.equal(status.pid, pid);
    } finally {
      assert.equal(await stopDevServer(stateDir), true);
    }
    assert.equal(isProcessAlive(pid), false);
    assert.equal(await stopDevServer(stateDir), false);
  });

  test('an unreachable embedded server is one actionable line', async () => {
    const port = await freePort();
    await withEnv({ EVOSCALE_HOME: path.join(scratch, 'nothing-here'), EVOSCALE_TEMPORAL_PORT: String(port) }, async () => {
      await assert.rejects(connectClient(), {
        message: `cannot reach Temporal at 127.0.0.1:${port} — run \`evo up\` or set TEMPORAL_ADDRESS`,
      });
    });
  });
});

describe('connection settings from the environment', () => {
  test('API key turns TLS on; TEMPORAL_TLS=0 turns it off', () => {
    withEnv({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'k' }, () => {
      const t = temporalTarget();
      assert.deepEqual(t, { address: 'ns.acct.tmprl.cloud:7233', namespace: 'ns.acct', embedded: false, tls: {}, apiKey: 'k' });
      assert.equal(temporalUiUrl('w'), 'https://cloud.temporal.io/namespaces/ns.acct/workflows/w');
      withEnv({ TEMPORAL_TLS: '0' }, () => assert.equal(temporalTarget().tls, false));
    });
  });

  test('mTLS reads the certificate files and needs both halves', () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'tls-'));
    for (const f of ['c.pem', 'k.pem', 'ca.pem']) fs.writeFileSync(path.join(dir, f), f);
    withEnv(
      {
        TEMPORAL_ADDRESS: 'temporal.internal:7233',
        TEMPORAL_TLS_CERT: path.join(dir, 'c.pem'),
        TEMPORAL_TLS_KEY: path.join(dir, 'k.pem'),
        TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal',
      },
      () => {
        const tls = temporalTarget().tls;
        assert.ok(tls);
        assert.equal(tls.serverNameOverride, 'temporal');
        assert.equal(Buffer.from(tls.serverRootCACertificate!).toString(), 'ca.pem');
        assert.equal(Buffer.from(tls.clientCertPair!.crt).toString(), 'c.pem');
        assert.equal(Buffer.from(tls.clientCertPair!.key).toString(), 'k.pem');
        assert.equal(temporalUiUrl(), undefined);
        withEnv({ TEMPORAL_TLS_KEY: undefined }, () => assert.throws(() => temporalTarget(), /needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/));
      },
    );
  });

  test('TEMPORAL_CLI_PATH that is not executable is refused', async () => {
    const file = path.join(scratch, 'not-executable');
    fs.writeFileSync(file, '');
    await withEnv({ TEMPORAL_CLI_PATH: file }, () =>
      assert.rejects(findTemporalBinary(), /TEMPORAL_CLI_PATH=.* is not an executable file/),
    );
  });
});
