// Entry of the sandboxed validation child: runs the dynamic checks on one candidate block, timing the
// framework's baseline block in the same process as the reference.
import { sealFunctionConstructors, serveSandboxedTask } from './child';
import { runDynamicChecks } from '../validate/dynamic';
import type { DynamicInput, DynamicReport } from '../validate/report';

sealFunctionConstructors();
serveSandboxedTask<DynamicInput, DynamicReport>((input) => runDynamicChecks(input));
