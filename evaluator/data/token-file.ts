// Token files: a 16-byte header ("EVOTOKv1", bytes per token, token count; little-endian) followed
// by the ids, two bytes each while the vocabulary fits in 65536, four otherwise.
import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import { writeFileAtomic } from '../../core/atomic-file';
import { EvoError } from '../../core/errors';

const MAGIC = 'EVOTOKv1';
const HEADER_BYTES = 16;

export function tokenBytesFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

/** The most ids one token file may hold: loadTokens reads a file into one Buffer, and the header counts in 32 bits. */
export function maxTokensPerFile(vocabSize: number): number {
  return Math.min(0xffffffff, Math.floor((bufferConstants.MAX_LENGTH - HEADER_BYTES) / tokenBytesFor(vocabSize)));
}

function header(width: 2 | 4, count: number): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  buffer.write(MAGIC, 0, 'latin1');
  buffer.writeUInt32LE(width, 8);
  buffer.writeUInt32LE(count, 12);
  return buffer;
}

export function writeTokenFile(file: string, ids: Int32Array, vocabSize: number): void {
  const width = tokenBytesFor(vocabSize);
  const buffer = Buffer.alloc(HEADER_BYTES + ids.length * width);
  header(width, ids.length).copy(buffer);
  for (let i = 0; i < ids.length; i++) {
    if (width === 2) buffer.writeUInt16LE(ids[i], HEADER_BYTES + 2 * i);
    else buffer.writeUInt32LE(ids[i], HEADER_BYTES + 4 * i);
  }
  writeFileAtomic(file, buffer);
}

/**
 * Writes a token file from chunks of little-endian uint16 ids (nanoGPT's .bin layout) without
 * holding them all in memory: copied as they are at 2 bytes a token, widened at 4. The file is
 * written in place, so it belongs in a private build folder that is published whole.
 */
export function writeTokenFileFromUint16(file: string, count: number, vocabSize: number, chunks: Iterable<Buffer>): void {
  const width = tokenBytesFor(vocabSize);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, header(width, count));
    let written = 0;
    for (const chunk of chunks) {
      if (width === 2) {
        fs.writeSync(fd, chunk);
      } else {
        const wide = Buffer.alloc(chunk.length * 2);
        for (let i = 0; i < chunk.length; i += 2) wide.writeUInt32LE(chunk[i] | (chunk[i + 1] << 8), 2 * i);
        fs.writeSync(fd, wide);
      }
      written += chunk.length / 2;
    }
    if (written !== count) throw new Error(`token file ${file}: expected ${count} ids, got ${written}`);
  } finally {
    fs.closeSync(fd);
  }
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
