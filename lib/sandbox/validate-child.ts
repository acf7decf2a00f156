// Entry of the sandboxed validation child: runs the dynamic checks on one candidate block, timing the
// framework's baseline block in the same process as the reference.
import { sealFunctionConstructors, serveSandboxedTask } from './child';
import { runDynamicChecks, type DynamicInput, type DynamicReport } from '../validate/dynamic';

sealFunctionConstructors();
serveSandboxedTask<DynamicInput, DynamicReport>((input) => runDynamicChecks(input));
