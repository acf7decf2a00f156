// The local stack behind `evo up` / `evo down`: the embedded Temporal server, one control worker
// and device workers, each detached with a pid file and a log under the state folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { repoRoot, stateDir } from '../core/paths';
import { EvoError } from '../core/errors';
import { isProcessAlive } from './temporal/lock';
import { startDevServer, stopDevServer, devServerStatus } from './temporal/devserver';

export interface WorkerProcess {
  name: string;
  pid: number;
  running: boolean;
  logFile: string;
}

function workersDir(): string {
  return path.join(stateDir(), 'workers');
}

function pidFile(name: string): string {
  return path.join(workersDir(), `${name}.pid`);
}

function logFile(name: string): string {
  return path.join(stateDir(), 'logs', `${name}.log`);
}

function readPid(name: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile(name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A pid is ours if it is alive and runs our worker script (pids are reused after reboots). */
function isOurWorker(pid: number, script: string): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(script);
  } catch {
    return true;
  }
}

/** GPUs visible through nvidia-smi, or none. */
export function detectGpus(): number[] {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return out.split('\n').filter((l) => /^GPU \d+/.test(l)).map((_, i) => i);
  } catch {
    return [];
  }
}

/** `auto`: one device worker per GPU, else one per CPU core. Or a list like `0,1` / `cpu,cpu`. */
export function parseDevices(spec: string): string[] {
  if (spec === 'auto') {
    const gpus = detectGpus();
    return gpus.length > 0 ? gpus.map(String) : Array.from({ length: Math.max(1, os.cpus().length) }, () => 'cpu');
  }
  const list = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const d of list) if (d !== 'cpu' && !/^\d+$/.test(d)) throw new EvoError(`--devices: "${d}" is neither "cpu" nor a GPU index`, 'USAGE');
  if (list.length === 0) throw new EvoError('--devices needs at least one device', 'USAGE');
  return list;
}

function deviceWorkerNames(devices: string[]): { name: string; device: string }[] {
  let cpuSlot = 0;
  return devices.map((device) => ({ device, name: device === 'cpu' ? `device-cpu-${cpuSlot++}` : `device-gpu-${device}` }));
}

function startWorker(name: string, script: string, args: string[]): WorkerProcess {
  const existing = readPid(name);
  if (existing && isOurWorker(existing, script)) return { name, pid: existing, running: true, logFile: logFile(name) };
  fs.mkdirSync(workersDir(), { recursive: true });
  fs.mkdirSync(path.dirname(logFile(name)), { recursive: true });
  const out = fs.openSync(logFile(name), 'a');
  const child = spawn(process.execPath, [script, ...args], { cwd: repoRoot, detached: true, stdio: ['ignore', out, out], env: process.env });
  fs.closeSync(out);
  if (child.pid === undefined) throw new EvoError(`could not start ${name}`, 'WORKER_START');
  child.unref();
  fs.writeFileSync(pidFile(name), `${child.pid}\n`);
  return { name, pid: child.pid, running: true, logFile: logFile(name) };
}

export interface UpOptions {
  devices: string[];
  /** Trainings each device worker runs at once on its device (default 1). */
  slots?: number;
  log: (line: string) => void;
}

export interface StackStatus {
  server: { running: boolean; address?: string; uiUrl?: string; external?: boolean };
  workers: WorkerProcess[];
}

const CONTROL_SCRIPT = path.join(repoRoot, 'dist', 'workers', 'control.js');
const DEVICE_SCRIPT = path.join(repoRoot, 'dist', 'workers', 'device.js');

/** Idempotent: what already runs is left alone; what is missing is started. */
export async function stackUp(opts: UpOptions): Promise<StackStatus> {
  let server: StackStatus['server'];
  if (process.env.TEMPORAL_ADDRESS) {
    server = { running: true, address: process.env.TEMPORAL_ADDRESS, external: true };
    opts.log(`using the Temporal cluster at ${process.env.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS)`);
  } else {
    const h = await startDevServer({ detached: true, install: true, log: opts.log });
    server = { running: true, address: h.address, uiUrl: h.uiUrl };
  }
  const workers = [startWorker('control', CONTROL_SCRIPT, [])];
  for (const { name, device } of deviceWorkerNames(opts.devices)) workers.push(startWorker(name, DEVICE_SCRIPT, ['--device', device, '--slots', String(opts.slots ?? 1)]));
  return { server, workers };
}

function knownWorkers(): string[] {
  try {
    return fs.readdirSync(workersDir()).filter((f) => f.endsWith('.pid')).map((f) => f.slice(0, -4)).sort();
  } catch {
    return [];
  }
}

function scriptFor(name: string): string {
  return name === 'control' ? CONTROL_SCRIPT : DEVICE_SCRIPT;
}

export async function stackStatus(): Promise<StackStatus> {
  const s = await devServerStatus();
  const workers = knownWorkers().map((name) => {
    const pid = readPid(name) ?? 0;
    return { name, pid, running: isOurWorker(pid, scriptFor(name)), logFile: logFile(name) };
  });
  return { server: process.env.TEMPORAL_ADDRESS ? { running: true, address: process.env.TEMPORAL_ADDRESS, external: true } : s, workers };
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isProcessAlive(pid);
}

/** Stop workers (SIGTERM: they finish their current task slot's shutdown), then the server. */
export async function stackDown(log: (line: string) => void): Promise<void> {
  for (const name of knownWorkers()) {
    const pid = readPid(name);
    if (pid && isOurWorker(pid, scriptFor(name))) {
      process.kill(pid, 'SIGTERM');
      if (!(await waitForExit(pid, 15_000))) process.kill(pid, 'SIGKILL');
      log(`stopped ${name} (pid ${pid})`);
    }
    fs.rmSync(pidFile(name), { force: true });
  }
  if (!process.env.TEMPORAL_ADDRESS && (await stopDevServer())) log('stopped the Temporal dev server');
}
