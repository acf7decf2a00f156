// Test harness: the workers of a real run — a control worker in this process on the bundled workflow
// code, and device workers as child processes (as `evo up` starts them) — for the length of a test body.
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import * as controlActivities from '../../activities/control';
import { CONTROL_QUEUE, type RunState, type RunSummary } from '../../contract';
import { composeSummary } from '../../archive';
import { repoRoot } from '../../core/paths';
import type { TestServer } from './temporal-server';

/** How a test's device worker differs from a plain `--device cpu` one: more flags (`--slots 2`), more environment. */
export interface DeviceWorkerOptions {
  args?: string[];
  env?: Record<string, string>;
}

/** A device worker process on the server; its stderr lines go to `logs`. */
export function startDeviceWorker(server: TestServer, logs: string[], opts: DeviceWorkerOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'workers', 'device.js'), '--device', 'cpu', ...(opts.args ?? [])], {
    env: { ...process.env, ...server.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d) => logs.push(String(d)));
  return child;
}

/** A run's summary, or an error whose message holds the failure's chain of causes and the workers' last log lines. */
export async function summaryOf(handle: WorkflowHandle, logs: string[] = []): Promise<RunSummary> {
  try {
    return composeSummary((await handle.result()) as RunState);
  } catch (err) {
    const chain: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) chain.push(e.message);
    throw new Error(`${chain.join(' ← ')}\n${logs.slice(-30).join('')}`);
  }
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Run `body` with a control worker in this process and one device worker process (replaceable through `device.current`). */
export async function withWorkers<T>(
  server: TestServer,
  bundle: WorkflowBundleWithSourceMap,
  logs: string[],
  body: (client: Client, device: { current: ChildProcess }) => Promise<T>,
  deviceOptions: DeviceWorkerOptions = {},
): Promise<T> {
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: server.namespace,
    taskQueue: CONTROL_QUEUE,
    workflowBundle: bundle,
    activities: controlActivities,
    maxConcurrentActivityTaskExecutions: 2,
  });
  const connection = await server.connect();
  const client = new Client({ connection, namespace: server.namespace });
  const device = { current: startDeviceWorker(server, logs, deviceOptions) };
  try {
    return await worker.runUntil(body(client, device));
  } finally {
    await stopProcess(device.current);
    await connection.close();
    await nativeConnection.close();
  }
}

/** A run's result, or an error carrying the failure's chain of causes and the workers' last log lines. */
export async function runResult(handle: WorkflowHandle, logs: string[]): Promise<RunSummary> {
  try {
    return composeSummary((await handle.result()) as RunState);
  } catch (err) {
    const chain: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) chain.push(e.message);
    throw new Error(`${chain.join(' ← ')}\n${logs.slice(-20).join('\n')}`);
  }
}
