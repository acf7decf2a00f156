// How many trainings a device worker runs at once on its one device: a Temporal slot supplier whose
// limit can drop while the worker runs (the SDK's fixed maxConcurrentActivityTaskExecutions cannot),
// so a worker whose training ran out of GPU memory takes fewer tasks from then on.
import { EvoError } from '../core/errors';
import type { ActivitySlotInfo, CustomSlotSupplier, SlotPermit } from '@temporalio/worker';

/** `--slots`: a whole number ≥ 1, else a one-line error. */
export function parseSlots(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw new EvoError(`--slots must be a whole number of at least 1, got "${text}"`, 'USAGE');
  return n;
}

/**
 * A permit is handed out (and the worker polls for a task) only while fewer than `limit` are out. A
 * training that ran out of memory lowers the limit by one before its permit comes back, so the permits
 * out never exceed the new limit and no training already running has to be stopped.
 */
export class TrainingSlots implements CustomSlotSupplier<ActivitySlotInfo> {
  readonly type = 'custom';
  private out = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private current: number) {}

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
    while (this.out < this.current && this.waiting.length > 0) this.waiting.shift()!();
  }

  /**
   * A training admitted when the worker ran `admittedAt` at once ran out of memory: run one fewer than
   * that from now on (never below one, and never lowered twice for trainings that crowded the device together).
   */
  outOfMemory(admittedAt: number): number {
    this.current = Math.max(1, Math.min(this.current, admittedAt - 1));
    return this.current;
  }

  private take(): SlotPermit {
    this.out++;
    return {};
  }
}
