// Entry of the sandboxed training child: trains one size of one candidate and reports progress.
// A crashing or hostile candidate takes down only this process, never the worker that spawned it.
import { sealFunctionConstructors, serveSandboxedTask } from './child';
import { trainOneSize, type TrainJob, type TrainResult } from '../evaluator/train';

sealFunctionConstructors();
serveSandboxedTask<TrainJob, TrainResult>((job, ctx) => trainOneSize(job, (p) => ctx.progress(p)));
