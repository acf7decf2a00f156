// The control worker: runs the workflows and the CPU/LLM activities (prepare data, propose,
// validate, fit, select, archive) on the control task queue.
import { Worker } from '@temporalio/worker';
import * as activities from '../activities/control';
import { connectWorkerConnection } from '../ops/temporal/connection';
import { CONTROL_QUEUE } from '../contract';
import { exitWithError } from '../core/output';

export async function createControlWorker(): Promise<Worker> {
  const { connection, namespace } = await connectWorkerConnection();
  return Worker.create({
    connection,
    namespace,
    taskQueue: CONTROL_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities,
    // Validation runs candidates in child processes; two at once keep two cores busy.
    maxConcurrentActivityTaskExecutions: 2,
    // SIGTERM (`evo down`) cancels running activities at once (a validation's child is killed) and reports
    // them failed, so the next control worker retries them instead of waiting out their timeout.
    shutdownGraceTime: 0,
    shutdownForceTime: '10 seconds',
    identity: `control@${require('node:os').hostname()}:${process.pid}`,
  });
}

if (require.main === module) {
  createControlWorker()
    .then((worker) => {
      console.log(`evoscale control worker on task queue ${CONTROL_QUEUE} (pid ${process.pid})`);
      return worker.run();
    })
    .catch(exitWithError);
}
