// A device worker: one training at a time on one accelerator (or one CPU slot), pinned with
// CUDA_VISIBLE_DEVICES before any tensor backend loads. Several share the training queue.
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { EvoError } from '../core/errors';
import { exitWithError } from '../core/output';

export function pinDevice(device: string): string {
  if (device === 'cpu') {
    process.env.CUDA_VISIBLE_DEVICES = '';
    return 'cpu';
  }
  if (!/^\d+$/.test(device)) throw new EvoError(`--device must be "cpu" or a GPU index, got "${device}"`, 'USAGE');
  process.env.CUDA_VISIBLE_DEVICES = device;
  return `gpu${device}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { device: { type: 'string', default: 'cpu' } }, strict: true });
  const label = pinDevice(values.device as string);
  // Only now load the worker and activities: nothing tensor-related may load before pinning.
  const { Worker } = await import('@temporalio/worker');
  const { connectWorkerConnection } = await import('../ops/temporal/connection');
  const { TRAIN_QUEUE } = await import('../contract');
  const training = await import('../activities/train');
  const { connection, namespace } = await connectWorkerConnection();
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: TRAIN_QUEUE,
    activities: { trainSize: training.trainSize },
    maxConcurrentActivityTaskExecutions: 1,
    // SIGTERM (`evo down`) cancels the training at once: its child is killed and the attempt is reported
    // failed (activities/errors.ts), so the server retries it right away on another or the next device
    // worker, which resumes from the size's checkpoint. Never wait out a training that may run for hours;
    // exit well before `evo down` would SIGKILL.
    shutdownGraceTime: 0,
    shutdownForceTime: '10 seconds',
    identity: `device-${label}@${os.hostname()}:${process.pid}`,
  });
  console.log(`evoscale device worker ${label} on task queue ${TRAIN_QUEUE} (pid ${process.pid})`);
  await worker.run();
}

if (require.main === module) main().catch(exitWithError);
