// Token files: a 16-byte header ("EVOTOKv1", bytes per token, token count; little-endian) followed
// by the ids, two bytes each while the vocabulary fits in 65536, four otherwise.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../../core/atomic-file';
import { EvoError } from '../../core/errors';

const MAGIC = 'EVOTOKv1';
const HEADER_BYTES = 16;

export function tokenBytesFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

export function writeTokenFile(file: string, ids: Int32Array, vocabSize: number): void {
  const width = tokenBytesFor(vocabSize);
  const buffer = Buffer.alloc(HEADER_BYTES + ids.length * width);
  buffer.write(MAGIC, 0, 'latin1');
  buffer.writeUInt32LE(width, 8);
  buffer.writeUInt32LE(ids.length, 12);
  for (let i = 0; i < ids.length; i++) {
    if (width === 2) buffer.writeUInt16LE(ids[i], HEADER_BYTES + 2 * i);
    else buffer.writeUInt32LE(ids[i], HEADER_BYTES + 4 * i);
  }
  writeFileAtomic(file, buffer);
}

/** All ids of a token file, widened to Int32 for building batches. */
export function loadTokens(file: string): Int32Array {
  const buffer = fs.readFileSync(file);
  const width = buffer.length >= HEADER_BYTES ? buffer.readUInt32LE(8) : 0;
  const count = buffer.length >= HEADER_BYTES ? buffer.readUInt32LE(12) : 0;
  if (
    buffer.toString('latin1', 0, 8) !== MAGIC ||
    (width !== 2 && width !== 4) ||
    buffer.length !== HEADER_BYTES + count * width
  ) {
    throw new EvoError(`${file} is not a complete evoscale token file; delete its data cache entry`);
  }
  const ids = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    ids[i] = width === 2 ? buffer.readUInt16LE(HEADER_BYTES + 2 * i) : buffer.readUInt32LE(HEADER_BYTES + 4 * i);
  }
  return ids;
}
