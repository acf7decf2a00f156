// Atomic writes (temp file + fsync + rename): a crash leaves the old file or the new one, never half of one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * fsync so the new file survives power loss, not just a crash. Node's permission model (the
 * candidate sandbox) refuses fsync; there the rename still keeps the file whole across crashes.
 */
function syncToDisk(fd: number): void {
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_ACCESS_DENIED') throw err;
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (err) {
    // Create the folder only when missing: a recursive mkdir touches the parents, which Node's
    // permission model (the candidate sandbox) refuses even when they exist.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(tmp, 'w');
  }
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off);
    syncToDisk(fd);
  } catch (err) {
    // A full disk: the half-written temp file would only hold on to the space that ran out.
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJsonIfExists<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
