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

/** "45 s", "12 min", "3.2 h". */
export function fmtDuration(s: number): string {
  return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

/** Seconds left at the pace so far: `step − fromStep` steps took `elapsedS`; null before a step was done. */
export function etaSeconds(step: number, steps: number, fromStep: number, elapsedS: number): number | null {
  const done = step - fromStep;
  return done > 0 && elapsedS > 0 ? ((steps - step) * elapsedS) / done : null;
}

/** "[########............]": the share of steps done, `width` characters inside the brackets. */
export function progressBar(step: number, steps: number, width = 20): string {
  const filled = Math.min(width, Math.max(0, Math.round((width * step) / Math.max(1, steps))));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** One training as a progress bar shows it. */
export interface TrainingBar {
  /** Which training: size and seed, and the program or iteration where several train. */
  label: string;
  step: number;
  steps: number;
  trainLoss?: number;
  valLoss?: number;
  /** Seconds left; null while unknown. */
  etaS: number | null;
}

/**
 * One line per training: label, bar, step/steps, ETA, last losses. Each line is cut to `columns` so that
 * none wraps, and finished trainings fold into one line when there are more than `rows`: a block
 * redrawn in place moves the cursor up by its count of lines, which must stay on the screen.
 */
export function trainingBars(bars: readonly TrainingBar[], columns = 80, rows = Infinity): string[] {
  const fold = bars.length > rows;
  const running = bars.filter((b) => b.step < b.steps);
  const shown = fold ? running.slice(0, Math.max(0, rows - 1)) : bars;
  const labelWidth = Math.max(0, ...shown.map((b) => b.label.length));
  const stepWidth = Math.max(0, ...shown.map((b) => `${b.step}/${b.steps}`.length));
  const lines = shown.map((b) => {
    const losses = `train ${fmtLoss(b.trainLoss)}${b.valLoss !== undefined ? `  val ${fmtLoss(b.valLoss)}` : ''}`;
    const eta = b.step >= b.steps ? 'done' : `ETA ${b.etaS === null ? '—' : fmtDuration(b.etaS)}`;
    // The ETA before the losses: on a narrow terminal the cut takes the validation loss first.
    return `${b.label.padEnd(labelWidth)}  ${progressBar(b.step, b.steps, 12)}  ${`${b.step}/${b.steps}`.padStart(stepWidth)}  ${eta.padEnd(10)}  ${losses}`;
  });
  const hidden = running.length - shown.length;
  if (fold) lines.unshift(`${bars.length - running.length} of ${bars.length} trainings done${hidden > 0 ? `, ${hidden} more not shown` : ''}`);
  return lines.map((line) => (line.length > columns ? `${line.slice(0, Math.max(1, columns - 1))}…` : line));
}

/** What a training reports as it goes (the evaluator's progress events carry at least this). */
export interface StepReport {
  step: number;
  steps: number;
  /** The step this attempt started from (a resumed checkpoint), so the ETA counts only this attempt's pace. */
  resumedFromStep: number;
  trainLoss?: number;
  valLoss?: number;
}

/** The latest report of each training, by label, with its ETA at the pace since its first report. */
export class TrainingBoard {
  private readonly rows = new Map<string, { report: StepReport; firstAtMs: number; trainLoss?: number; valLoss?: number }>();

  update(label: string, report: StepReport, nowMs: number): void {
    const row = this.rows.get(label);
    // A retried attempt (a step back) starts its pace afresh.
    if (!row || report.step < row.report.step) {
      this.rows.set(label, { report, firstAtMs: nowMs, trainLoss: report.trainLoss, valLoss: report.valLoss });
      return;
    }
    row.report = report;
    if (report.trainLoss !== undefined) row.trainLoss = report.trainLoss;
    if (report.valLoss !== undefined) row.valLoss = report.valLoss;
  }

  /** Bars in the order trainings first reported; ETAs as of `nowMs`. */
  bars(nowMs: number): TrainingBar[] {
    return [...this.rows].map(([label, r]) => ({
      label,
      step: r.report.step,
      steps: r.report.steps,
      trainLoss: r.trainLoss,
      valLoss: r.valLoss,
      etaS: etaSeconds(r.report.step, r.report.steps, r.report.resumedFromStep, (nowMs - r.firstAtMs) / 1000),
    }));
  }
}

/** Where a live block draws: a terminal stream (process.stderr), or a test's stand-in. */
export interface TerminalStream {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
}

/**
 * Lines kept at the bottom of a terminal and redrawn in place (progress bars), with permanent lines
 * printed above them. For terminals only: off a terminal, callers print plain progress lines instead.
 */
export class LiveBlock {
  private shown = 0;
  private lines: string[] = [];

  constructor(private readonly out: TerminalStream = process.stderr) {}

  /** The terminal's width, for cutting lines (80 when it does not say). */
  get columns(): number {
    return this.out.columns || 80;
  }

  /** Lines the block may take: one less than the terminal's height (24 when it does not say). */
  get rows(): number {
    return (this.out.rows || 24) - 1;
  }

  /** Replace the block with `lines`, in one write: cursor up to the block's first line, clear to the end, draw. */
  show(lines: string[]): void {
    this.lines = lines;
    this.out.write(this.erase() + this.drawn());
  }

  /** Print permanent output above the block (`write` may write to stdout: the block is off screen meanwhile). */
  above(write: () => void): void {
    this.out.write(this.erase());
    write();
    this.out.write(this.drawn());
  }

  /** Leave the last drawing on screen; later output goes below it. */
  end(): void {
    this.shown = 0;
    this.lines = [];
  }

  private erase(): string {
    // CSI n F: to the start of the line n lines up; CSI 0 J: clear from there to the end of the screen.
    const text = this.shown ? `\x1b[${this.shown}F\x1b[0J` : '';
    this.shown = 0;
    return text;
  }

  private drawn(): string {
    this.shown = this.lines.length;
    return this.lines.map((l) => l + '\n').join('');
  }
}

/** Print a user-facing error as one line and exit non-zero; stacks only with EVOSCALE_DEBUG=1. */
export function exitWithError(err: unknown): never {
  process.stderr.write(`evo: error: ${oneLine(err)}\n`);
  if (process.env.EVOSCALE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  else if (!(err instanceof EvoError)) process.stderr.write('evo: (set EVOSCALE_DEBUG=1 for the stack trace)\n');
  process.exit(err instanceof EvoError ? 2 : 1);
}

/** "1 seed", "5 seeds". */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
