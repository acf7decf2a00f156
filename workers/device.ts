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
    identity: `device-${label}@${os.hostname()}:${process.pid}`,
  });
  console.log(`evoscale device worker ${label} on task queue ${TRAIN_QUEUE} (pid ${process.pid})`);
  await worker.run();
}

if (require.main === module) main().catch(exitWithError);
