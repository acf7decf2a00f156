// Cross-process lock files for work that must happen once per folder (fetching the CLI, starting the
// dev server), plus the liveness test that tells a stale lock or pid file from a live one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EvoError } from '../../core/errors';

/** True when `pid` names a running process; a zombie (exited, not yet reaped) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): kill(0) is all there is
  }
}

function ownerPid(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return text ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Removes a lock whose owner has died. Renaming first means two waiters cannot both remove
 *  it and then delete each other's fresh lock: only one rename wins. */
function breakStaleLock(file: string, stalePid: number | undefined): void {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return;
  }
  if (ownerPid(aside) === stalePid) {
    fs.rmSync(aside, { force: true });
    return;
  }
  // Someone took the lock between our read and the rename: hand it back unless a third party already holds it.
  try {
    fs.linkSync(aside, file);
  } catch {
    /* a newer lock exists; the one we moved aside is superseded */
  }
  fs.rmSync(aside, { force: true });
}

export interface LockOptions {
  timeoutMs: number;
  /** Called once if the lock is busy, so a user knows why nothing happens. */
  onWait?: (ownerPid: number | undefined) => void;
}

export async function withFileLock<T>(file: string, what: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + opts.timeoutMs;
  let warned = false;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = ownerPid(file);
    let ageMs = 0;
    try {
      ageMs = Date.now() - fs.statSync(file).mtimeMs;
    } catch {
      continue; // released between our two looks
    }
    // An empty file is a lock being written; only after a while does it mean its writer died.
    if (owner === undefined ? ageMs > 10_000 : !isProcessAlive(owner)) {
      breakStaleLock(file, owner);
      continue;
    }
    if (Date.now() > deadline) {
      throw new EvoError(`timed out waiting for ${what}: lock ${file} is held by pid ${owner ?? '?'}`);
    }
    if (!warned) opts.onWait?.(owner);
    warned = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  try {
    return await fn();
  } finally {
    if (ownerPid(file) === process.pid) fs.rmSync(file, { force: true });
  }
}
