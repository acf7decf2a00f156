// How many trainings a device worker runs at once on its one device: a Temporal slot supplier whose
// limit can change while the worker runs (the SDK's fixed maxConcurrentActivityTaskExecutions cannot),
// so a worker whose training ran out of GPU memory takes fewer tasks, and more again once they fit.
import { EvoError } from '../core/errors';
import type { ActivitySlotInfo, CustomSlotSupplier, SlotPermit } from '@temporalio/worker';

/** `--slots`: a whole number ≥ 1, else a one-line error. */
export function parseSlots(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw new EvoError(`--slots must be a whole number of at least 1, got "${text}"`, 'USAGE');
  return n;
}

/**
 * Trainings that must finish at a lowered number of slots, none of them out of memory, before the worker
 * tries one more: the sizes of an iteration (the three of `micro`, the four of `full`) come and go, so this
 * is about one iteration's worth of evidence that the lower number is comfortable.
 */
export const TRAININGS_BEFORE_RAISE = 3;

/** A change of the number of slots, for the worker's log. */
export interface SlotChange {
  /** Trainings this worker runs at once from now on. */
  limit: number;
  /** Whether the number can no longer rise: it ran out of memory twice at the number above. */
  pinned: boolean;
}

/**
 * A permit is handed out (and the worker polls for a task) only while fewer than `limit` are out. A
 * training that ran out of memory lowers the limit by one before its permit comes back, so the permits
 * out never exceed the new limit and no training already running has to be stopped. After
 * TRAININGS_BEFORE_RAISE trainings finish at the lowered number without running out of memory, the limit
 * rises by one, never above the worker's `--slots`; running out of memory a second time at a number it
 * dropped from pins it below that number. Each number drops at most twice, so the limit settles.
 */
export class TrainingSlots implements CustomSlotSupplier<ActivitySlotInfo> {
  readonly type = 'custom';
  private out = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private current: number;
  /** The most the limit may rise to: `--slots`, lowered by a second out-of-memory at a number. */
  private ceiling: number;
  /** Numbers of slots an out-of-memory dropped the limit from. */
  private readonly droppedFrom = new Set<number>();
  /** Trainings finished at the current, lowered limit since it last changed or a training ran out of memory. */
  private clean = 0;

  constructor(slots: number) {
    this.current = slots;
    this.ceiling = slots;
  }

  /** Trainings this worker may run at once now. */
  get limit(): number {
    return this.current;
  }

  /** Trainings running now (permits whose task has started). */
  get busy(): number {
    return this.running;
  }

  reserveSlot(_ctx: unknown, abortSignal: AbortSignal): Promise<SlotPermit> {
    if (this.out < this.current) return Promise.resolve(this.take());
    return new Promise((resolve, reject) => {
      const wake = () => {
        abortSignal.removeEventListener('abort', onAbort);
        resolve(this.take());
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(wake), 1);
        reject(abortSignal.reason);
      };
      abortSignal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(wake);
    });
  }

  tryReserveSlot(): SlotPermit | null {
    return this.out < this.current ? this.take() : null;
  }

  markSlotUsed(): void {
    this.running++;
  }

  releaseSlot(ctx: { slotInfo?: ActivitySlotInfo }): void {
    this.out--;
    if (ctx.slotInfo) this.running--;
    this.wakeWaiting();
  }

  /**
   * A training admitted when the worker ran `admittedAt` at once ran out of memory: run one fewer than
   * that from now on (never below one, and never lowered twice for trainings that crowded the device
   * together). The change, or null when the limit was already lower.
   */
  outOfMemory(admittedAt: number): SlotChange | null {
    this.clean = 0;
    const lower = Math.max(1, Math.min(this.current, admittedAt - 1));
    if (lower === this.current) return null;
    if (this.droppedFrom.has(admittedAt)) this.ceiling = Math.min(this.ceiling, lower);
    this.droppedFrom.add(admittedAt);
    this.current = lower;
    return { limit: lower, pinned: this.ceiling === lower };
  }

  /**
   * A training admitted at `admittedAt` slots finished without running out of memory: the change when it
   * was the TRAININGS_BEFORE_RAISE-th at the lowered limit (one slot more), else null.
   */
  finished(admittedAt: number): SlotChange | null {
    if (admittedAt !== this.current || this.current >= this.ceiling) return null;
    if (++this.clean < TRAININGS_BEFORE_RAISE) return null;
    this.clean = 0;
    this.current++;
    this.wakeWaiting();
    return { limit: this.current, pinned: false };
  }

  private wakeWaiting(): void {
    while (this.out < this.current && this.waiting.length > 0) this.waiting.shift()!();
  }

  private take(): SlotPermit {
    this.out++;
    return {};
  }
}
