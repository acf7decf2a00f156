#!/usr/bin/env node
// The `evo` command: one entry, one sub-command per user task.
import { parseArgs } from 'node:util';
import { EvoError } from '../lib/errors';
import { exitWithError } from './output';
import { evaluateCommand } from './evaluate';

const USAGE = `usage: evo <command> [options]

commands:
  evaluate --framework <name> [--program <file>] [--profile smoke|full|micro] [--json]
      train every size of the framework's baseline (or of a program file: a whole framework
      file or just its EVOLVE-BLOCK) and print per-size losses, the scaling-law fit and fitness

frameworks: coefficient_dynamics, test_time_regression, matrix_mixer
environment: EVOSCALE_HOME (state folder, default ./.evoscale), EVOSCALE_BACKEND (auto|tensorflow-gpu|tensorflow|wasm|cpu)`;

type Options = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

function parse(argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new EvoError(`${(err as Error).message.split('\n')[0]}\n${USAGE}`, 'USAGE');
  }
}

function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new EvoError(`--${name} is required (see \`evo help\`)`, 'USAGE');
  return v;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'evaluate': {
      const v = parse(rest, { framework: { type: 'string' }, program: { type: 'string' }, profile: { type: 'string', default: 'smoke' }, json: { type: 'boolean', default: false } });
      await evaluateCommand({ framework: required(v, 'framework'), program: v.program as string | undefined, profile: v.profile as string, json: v.json as boolean });
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return;
    default:
      throw new EvoError(`unknown command "${command}"\n${USAGE}`, 'USAGE');
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => exitWithError(err),
);
