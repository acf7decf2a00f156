#!/usr/bin/env node
// The `evo` command: one entry, one sub-command per user task, each declared by one spec
// (cli/spec.ts) from which its parser and help are generated.
import { FRAMEWORKS } from '../contract';
import { EvoError } from '../core/errors';
import { exitWithError } from '../core/output';
import { commandHelp, globalHelp, runCommand, usageError, type CommandSpec } from './spec';
import { evaluate } from './commands/evaluate';
import { validate } from './commands/validate';
import { down, up } from './commands/stack';
import { start } from './commands/start';
import { status } from './commands/status';
import { pause, resume, stop } from './commands/signal';
import { report } from './commands/report';
import { retry } from './commands/retry';
import { gc } from './commands/gc';

export const COMMANDS: CommandSpec[] = [evaluate, validate, up, down, start, status, report, pause, resume, stop, retry, gc];

const FOOTER = [
  `frameworks: ${FRAMEWORKS.join(', ')}`,
  'environment: EVOSCALE_HOME (state folder, default ./.evoscale), EVOSCALE_BACKEND (auto|tensorflow-gpu|tensorflow|wasm|cpu)',
];

function find(name: string): CommandSpec {
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec) throw new EvoError(`unknown command "${name}" (see \`evo help\`)`, 'USAGE');
  return spec;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || (command === 'help' && rest.length === 0)) {
    process.stdout.write(globalHelp(COMMANDS, FOOTER) + '\n');
    return;
  }
  if (command === 'help') {
    if (rest.length > 1) throw usageError(`unexpected argument "${rest[1]}"`);
    process.stdout.write(commandHelp(find(rest[0])) + '\n');
    return;
  }
  await runCommand(find(command), rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => exitWithError(err),
  );
}
