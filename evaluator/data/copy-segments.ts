// Synthetic in-context copying mixed into a corpus: segments of `period` random symbols repeated to
// `length` tokens, set between stretches of the text. After a segment's first period every token
// equals the one `period` positions back, so a block predicts it only by attending that far back:
// a block with no mixing sees one symbol, a uniform average sees a bag of `period` of them. This
// makes small models' loss depend on what attention can retrieve (Poli et al. 2024 found such
// synthetic tasks predictive of architectures' scaling), where short text alone barely does.
import { EvoError } from '../../core/errors';
import { mulberry32 } from '../../core/random';
import type { CopySegments } from '../../contract';
export type { CopySegments };

export function checkCopySegments(spec: CopySegments, vocabSize: number): void {
  const { fraction, period, length, symbols } = spec;
  if (!(fraction > 0 && fraction < 1)) throw new EvoError(`data.copy_segments.fraction must be in (0, 1), got ${fraction}`);
  if (!Number.isInteger(period) || period < 1) throw new EvoError(`data.copy_segments.period must be a positive whole number, got ${period}`);
  if (!Number.isInteger(length) || length <= period) {
    throw new EvoError(`data.copy_segments.length must be a whole number above the period (${period}), got ${length}`);
  }
  if (!Number.isInteger(symbols) || symbols < 2 || symbols > vocabSize) {
    throw new EvoError(`data.copy_segments.symbols must be a whole number from 2 to the vocabulary size (${vocabSize}), got ${symbols}`);
  }
}

/** Text tokens between two segments, so that segments make up `fraction` of the mixed stream. */
export function textPerSegment({ fraction, length }: CopySegments): number {
  return Math.max(1, Math.round((length * (1 - fraction)) / fraction));
}

/**
 * The symbols segments draw from: the `count` ids the text uses least (ties to the lower id), so a
 * segment's tokens say by themselves that copying, not language, predicts what comes next.
 */
export function rarestIds(ids: Int32Array, vocabSize: number, count: number): Int32Array {
  const uses = new Float64Array(vocabSize);
  for (const id of ids) uses[id]++;
  const order = Array.from({ length: vocabSize }, (_, id) => id).sort((a, b) => uses[a] - uses[b] || a - b);
  return Int32Array.from(order.slice(0, count));
}

/**
 * The split `ids` with a segment after every `textPerSegment` text tokens, its symbols drawn from
 * `symbols` by a PRNG seeded with `seed`, so a split mixes the same way every time.
 */
export function mixCopySegments(ids: Int32Array, spec: CopySegments, symbols: Int32Array, seed: number): Int32Array {
  const stride = textPerSegment(spec);
  const segments = Math.floor(ids.length / stride);
  const out = new Int32Array(ids.length + segments * spec.length);
  const rand = mulberry32(seed);
  const pattern = new Int32Array(spec.period);
  let o = 0;
  for (let s = 0; s < segments; s++) {
    out.set(ids.subarray(s * stride, (s + 1) * stride), o);
    o += stride;
    for (let i = 0; i < spec.period; i++) pattern[i] = symbols[Math.floor(rand() * symbols.length)];
    for (let i = 0; i < spec.length; i++) out[o + i] = pattern[i % spec.period];
    o += spec.length;
  }
  out.set(ids.subarray(segments * stride), o);
  return out;
}
