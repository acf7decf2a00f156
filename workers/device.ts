// A device worker: up to `--slots` trainings at once (default one) on one accelerator (or one CPU
// slot), pinned with CUDA_VISIBLE_DEVICES before any tensor backend loads. Several share the training queue.
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { EvoError, oneLine } from '../core/errors';
import { counted, exitWithError } from '../core/output';
import { parseSlots, TrainingSlots, TRAININGS_BEFORE_RAISE } from './slots';
import type { TrainSizeInput } from '../activities/train';
import type { SeedRun } from '../contract';

export function pinDevice(device: string): string {
  if (device === 'cpu') {
    process.env.CUDA_VISIBLE_DEVICES = '';
    return 'cpu';
  }
  if (!/^\d+$/.test(device)) throw new EvoError(`--device must be "cpu" or a GPU index, got "${device}"`, 'USAGE');
  process.env.CUDA_VISIBLE_DEVICES = device;
  return `gpu${device}`;
}

/** `--device` and `--slots`; anything else is a one-line usage error. */
function deviceWorkerArgs(args: string[]): { device: string; slots: string } {
  try {
    return parseArgs({ args, options: { device: { type: 'string', default: 'cpu' }, slots: { type: 'string', default: '1' } }, strict: true }).values as { device: string; slots: string };
  } catch (err) {
    throw new EvoError(`device worker: ${oneLine(err)}`, 'USAGE');
  }
}

/** The engine's out-of-memory failure (engine/run.ts), as activities/errors.ts hands it to Temporal. */
const GPU_OUT_OF_MEMORY = 'GPU_OUT_OF_MEMORY';

async function main(): Promise<void> {
  const values = deviceWorkerArgs(process.argv.slice(2));
  const slots = new TrainingSlots(parseSlots(values.slots));
  const label = pinDevice(values.device);
  // Only now load the worker and activities: nothing tensor-related may load before pinning.
  const { Worker } = await import('@temporalio/worker');
  const { ApplicationFailure, log } = await import('@temporalio/activity');
  const { connectWorkerConnection } = await import('../ops/temporal/connection');
  const { TRAIN_QUEUE } = await import('../contract');
  const training = await import('../activities/train');

  /**
   * One training in one of the worker's slots. Running out of GPU memory is the infrastructure's fault,
   * never the candidate's: the attempt fails retryably (the retry resumes from the size's checkpoint)
   * and this worker runs one training fewer at once, until enough trainings fit (workers/slots.ts).
   */
  async function trainSize(input: TrainSizeInput): Promise<SeedRun> {
    const admittedAt = slots.limit;
    log.info(`training ${input.size.name} seed ${input.seed} (${slots.busy} of ${counted(admittedAt, 'slot')} busy)`);
    let done: { run: SeedRun; cached: boolean };
    try {
      done = await training.runTraining(input);
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === GPU_OUT_OF_MEMORY)) throw err;
      const what = `out of GPU memory at ${input.size.name} with ${counted(admittedAt, 'slot')}`;
      const change = slots.outOfMemory(admittedAt);
      const pinned = change?.pinned ? ` from now on (out of memory twice with ${counted(admittedAt, 'slot')})` : '';
      log.warn(`${what}: this worker now runs ${counted(slots.limit, 'slot')}${pinned}`);
      throw ApplicationFailure.retryable(`${what} (${err.message})`, GPU_OUT_OF_MEMORY);
    }
    // A cached result trained nothing, so it says nothing about the device's memory.
    if (!done.cached && slots.finished(admittedAt)) {
      log.info(`${TRAININGS_BEFORE_RAISE} trainings fit in GPU memory with ${counted(admittedAt, 'slot')}: this worker now runs ${counted(slots.limit, 'slot')}`);
    }
    return done.run;
  }

  const { connection, namespace } = await connectWorkerConnection();
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: TRAIN_QUEUE,
    activities: { trainSize },
    // Only activities poll here; the activity slots are ours, so their number can drop on out-of-memory.
    tuner: {
      activityTaskSlotSupplier: slots,
      workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
    },
    // SIGTERM (`evo down`) cancels every training at once: its child is killed and the attempt is reported
    // failed (activities/errors.ts), so the server retries it right away on another or the next device
    // worker, which resumes from the size's checkpoint. Never wait out a training that may run for hours;
    // exit well before `evo down` would SIGKILL.
    shutdownGraceTime: 0,
    shutdownForceTime: '10 seconds',
    identity: `device-${label}@${os.hostname()}:${process.pid}`,
  });
  console.log(`evoscale device worker ${label} with ${counted(slots.limit, 'slot')} on task queue ${TRAIN_QUEUE} (pid ${process.pid})`);
  await worker.run();
}

if (require.main === module) main().catch(exitWithError);
