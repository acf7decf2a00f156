// Terminal output shared by the CLI, the workers and the scripts: tables, number formats, one-line errors.
import { EvoError, oneLine } from './errors';

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

export function fmtLoss(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

/** A signed number with a true minus sign: "+0.0123", "−0.0456". */
export function fmtSigned(x: number, digits = 4): string {
  return `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(digits)}`;
}

/** An interval as "[−0.0123, +0.0456]". */
export function fmtInterval(ci: readonly [number, number], digits = 4): string {
  return `[${fmtSigned(ci[0], digits)}, ${fmtSigned(ci[1], digits)}]`;
}

/** Right-align numeric-looking cells, left-align the rest. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (s: string) => /^[-+−]?[\d,.]+%?$|^—$/.test(s);
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric(c) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Progress goes to stderr so that `--json` output on stdout stays machine-readable. */
export function progress(line: string): void {
  process.stderr.write(line + '\n');
}

/** Print a user-facing error as one line and exit non-zero; stacks only with EVOSCALE_DEBUG=1. */
export function exitWithError(err: unknown): never {
  process.stderr.write(`evo: error: ${oneLine(err)}\n`);
  if (process.env.EVOSCALE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  else if (!(err instanceof EvoError)) process.stderr.write('evo: (set EVOSCALE_DEBUG=1 for the stack trace)\n');
  process.exit(err instanceof EvoError ? 2 : 1);
}
