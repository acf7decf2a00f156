// Entry of the sandboxed tracing child: records a validated block's kernel graph at each training shape.
// The block is untrusted code, so it runs here under the sandbox's limits, exactly as validation runs it.
import { sealFunctionConstructors, serveSandboxedTask } from './child';
import { traceBlock, type TraceOutcome, type TraceRequest } from '../trace/record';

sealFunctionConstructors();
serveSandboxedTask<TraceRequest, TraceOutcome>((req) => traceBlock(req));
