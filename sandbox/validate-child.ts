// Entry of the sandboxed validation child: runs the dynamic checks on one candidate block, measuring the
// framework's baseline block in the same process as the reference and reporting each call's budget.
import { sealFunctionConstructors, serveSandboxedTask } from './child';
import { runDynamicChecks } from '../validate/dynamic';
import type { DynamicInput, DynamicReport } from '../validate/report';

sealFunctionConstructors();
serveSandboxedTask<DynamicInput, DynamicReport>((input, ctx) => runDynamicChecks(input, ctx));
