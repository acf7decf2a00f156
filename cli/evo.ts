#!/usr/bin/env node
// The `evo` command: one entry, one sub-command per user task.
import { parseArgs } from 'node:util';
import { EvoError } from '../core/errors';
import { exitWithError } from './output';
import { evaluateCommand, validateCommand } from './evaluate';
import { downCommand, signalCommand, startCommand, statusCommand, upCommand } from './runs';

const USAGE = `usage: evo <command> [options]

commands:
  evaluate --framework <name> [--program <file>] [--profile smoke|full|micro] [--json]
           [--corpus <file|dir> …] [--vocab-size N]
      train every size of the framework's baseline (or of a program file: a whole framework
      file or just its EVOLVE-BLOCK) and print per-size losses, the scaling-law fit and fitness

frameworks: coefficient_dynamics, test_time_regression, matrix_mixer
environment: EVOSCALE_HOME (state folder, default ./.evoscale), EVOSCALE_BACKEND (auto|tensorflow-gpu|tensorflow|wasm|cpu)`;

type Options = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean; default?: string | boolean }>;

function parse(argv: string[], options: Options): Record<string, string | boolean | string[] | undefined> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | string[] | undefined>;
  } catch (err) {
    throw new EvoError(`${(err as Error).message.split('\n')[0]}\n${USAGE}`, 'USAGE');
  }
}

function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new EvoError(`--${name} is required (see \`evo help\`)`, 'USAGE');
  return v;
}

function wholeNumber(text: string, name: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new EvoError(`--${name} must be a whole number, got "${text}"`, 'USAGE');
  return n;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'evaluate': {
      const v = parse(rest, {
        framework: { type: 'string' },
        program: { type: 'string' },
        profile: { type: 'string', default: 'smoke' },
        json: { type: 'boolean', default: false },
        corpus: { type: 'string', multiple: true },
        'vocab-size': { type: 'string' },
      });
      await evaluateCommand({
        framework: required(v, 'framework'),
        program: v.program as string | undefined,
        profile: v.profile as string,
        json: v.json as boolean,
        corpus: v.corpus as string[] | undefined,
        vocabSize: v['vocab-size'] === undefined ? undefined : wholeNumber(v['vocab-size'] as string, 'vocab-size'),
      });
      return;
    }
    case 'validate': {
      const v = parse(rest, { framework: { type: 'string' }, program: { type: 'string' }, profile: { type: 'string', default: 'smoke' }, json: { type: 'boolean', default: false } });
      await validateCommand({ framework: required(v, 'framework'), program: required(v, 'program'), profile: v.profile as string, json: v.json as boolean });
      return;
    }
    case 'up': {
      const v = parse(rest, { devices: { type: 'string', default: 'auto' } });
      await upCommand(v.devices as string);
      return;
    }
    case 'down':
      parse(rest, {});
      await downCommand();
      return;
    case 'start': {
      const v = parse(rest, {
        framework: { type: 'string' },
        config: { type: 'string' },
        profile: { type: 'string' },
        iterations: { type: 'string' },
        seed: { type: 'string' },
        wait: { type: 'boolean', default: false },
      });
      await startCommand({
        framework: required(v, 'framework'),
        config: v.config as string | undefined,
        profile: v.profile as string | undefined,
        iterations: v.iterations === undefined ? undefined : wholeNumber(v.iterations as string, 'iterations'),
        seed: v.seed === undefined ? undefined : wholeNumber(v.seed as string, 'seed'),
        wait: v.wait as boolean,
      });
      return;
    }
    case 'pause':
    case 'resume':
    case 'stop': {
      const [id, ...more] = rest;
      if (!id || more.length > 0) throw new EvoError(`usage: evo ${command} <workflowId>`, 'USAGE');
      await signalCommand(command, id);
      return;
    }
    case 'status': {
      const [id, ...more] = rest;
      if (more.length > 0 || id?.startsWith('-')) throw new EvoError(`usage: evo status [workflowId]`, 'USAGE');
      await statusCommand(id);
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
