// One spec per command. The parser, the usage line, `evo --help`, `evo help <command>` and
// `evo <command> --help` are all generated from the specs, so help cannot drift from what a
// command accepts. Commands load their implementation inside `run`, so help and usage errors
// answer at once, without loading Temporal, TypeScript or the evaluator.
import { parseArgs } from 'node:util';
import { EvoError } from '../core/errors';

export interface OptionSpec {
  name: string;
  /** `number`: a whole number, checked and parsed. */
  type: 'string' | 'number' | 'boolean';
  /** How the value is written in usage and help; default `<name>` (`N` for numbers). */
  value?: string;
  required?: boolean;
  /** May be given more than once (strings only); the values arrive as an array. */
  multiple?: boolean;
  /**
   * A string option whose value may be left out (`--png` alone: the value is `true`). The argument after
   * it is its value only when it ends in this suffix (`--png shot.png`), so that it is never mistaken for
   * a positional; `--png=<value>` always works.
   */
  optionalValueSuffix?: string;
  /** Booleans default to false. */
  default?: string;
  description: string;
}

export interface PositionalSpec {
  name: string;
  required?: boolean;
  description: string;
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export interface CommandSpec {
  name: string;
  /** One line, for `evo --help`. */
  summary: string;
  options: OptionSpec[];
  positionals?: PositionalSpec[];
  run(options: OptionValues, positionals: string[]): Promise<void>;
}

const HELP = { name: 'help', short: 'h', description: 'print this help' } as const;

export function usageError(message: string, command?: string): EvoError {
  return new EvoError(`${message} (see \`evo help${command ? ` ${command}` : ''}\`)`, 'USAGE');
}

function valueText(o: OptionSpec): string {
  return o.type === 'boolean' ? '' : ` ${o.value ?? (o.type === 'number' ? 'N' : `<${o.name}>`)}`;
}

function optionLabel(o: OptionSpec): string {
  return `--${o.name}${valueText(o)}${o.multiple ? ' …' : ''}`;
}

function wrap(words: string[], indent: number, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = ' '.repeat(indent) + w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  return [...lines, line].join('\n');
}

function usageLine(spec: CommandSpec): string {
  const head = `usage: evo ${spec.name}`;
  const words = [
    head,
    ...spec.options.map((o) => (o.required ? optionLabel(o) : `[${optionLabel(o)}]`)),
    ...(spec.positionals ?? []).map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`)),
  ];
  return wrap(words, head.length + 1);
}

function columns(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, text]) => `  ${label.padEnd(width)}   ${text}`).join('\n');
}

/** `evo help <command>` and `evo <command> --help`: usage, summary, every argument and option. */
export function commandHelp(spec: CommandSpec): string {
  const notes = (o: OptionSpec) =>
    [o.required && 'required', o.multiple && 'repeatable', o.default !== undefined && `default: ${o.default}`].filter(Boolean).join('; ');
  const options: [string, string][] = spec.options.map((o) => [optionLabel(o), notes(o) ? `${o.description} (${notes(o)})` : o.description]);
  options.push([`-${HELP.short}, --${HELP.name}`, HELP.description]);
  const positionals: [string, string][] = (spec.positionals ?? []).map((p) => [p.name, p.required ? `${p.description} (required)` : p.description]);
  return [
    usageLine(spec),
    '',
    spec.summary,
    ...(positionals.length ? ['', 'arguments:', columns(positionals)] : []),
    '',
    'options:',
    columns(options),
  ].join('\n');
}

/** `evo --help`: every command with its summary. */
export function globalHelp(specs: CommandSpec[], footer: string[]): string {
  return [
    'usage: evo <command> [options]',
    '',
    'commands:',
    columns(specs.map((s) => [s.name, s.summary])),
    '',
    '`evo help <command>` or `evo <command> --help` lists a command\'s arguments and options.',
    ...footer,
  ].join('\n');
}

function parseArgsOptions(spec: CommandSpec) {
  return Object.fromEntries(spec.options.map((o) => [o.name, { type: o.type === 'boolean' ? ('boolean' as const) : ('string' as const), multiple: o.multiple === true }]));
}

/** Whether argv asks for help (`--help` or `-h` given as an option, not as another option's value). */
function asksForHelp(spec: CommandSpec, argv: string[]): boolean {
  const { tokens } = parseArgs({
    args: argv,
    options: { ...parseArgsOptions(spec), [HELP.name]: { type: 'boolean', short: HELP.short } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  return tokens.some((t) => t.kind === 'option' && t.name === HELP.name);
}

/** Node's parseArgs messages, first sentence only, in this CLI's voice. */
function parseArgsMessage(err: unknown): string {
  const message = (err as Error).message.split('\n')[0];
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `unknown option '${unknown[1]}'`;
  const first = message.split(/\.(\s|$)/)[0];
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** `--png` alone becomes `--png=` (parseArgs wants a value), unless the next argument is its value. */
function withOptionalValues(spec: CommandSpec, argv: string[]): string[] {
  return argv.map((arg, i) => {
    const o = spec.options.find((x) => x.optionalValueSuffix !== undefined && arg === `--${x.name}`);
    return o && !argv[i + 1]?.endsWith(o.optionalValueSuffix!) ? `${arg}=` : arg;
  });
}

function parseCommand(spec: CommandSpec, argv: string[]): { options: OptionValues; positionals: string[] } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: withOptionalValues(spec, argv), options: parseArgsOptions(spec), strict: true, allowPositionals: true });
  } catch (err) {
    throw usageError(parseArgsMessage(err), spec.name);
  }
  const options: OptionValues = {};
  for (const o of spec.options) {
    let given = parsed.values[o.name] as string | boolean | string[] | undefined;
    if (o.optionalValueSuffix !== undefined && given === '') given = true;
    const value = given === undefined ? (o.type === 'boolean' ? false : o.default) : given;
    if (o.required && (value === undefined || value === '')) throw usageError(`--${o.name} is required`, spec.name);
    options[o.name] = o.type === 'number' && typeof value === 'string' ? wholeNumber(value, o.name, spec.name) : value;
  }
  const expected = spec.positionals ?? [];
  const extra = parsed.positionals[expected.length];
  if (extra !== undefined) throw usageError(`unexpected argument "${extra}"`, spec.name);
  const missing = expected.find((p, i) => p.required && parsed.positionals[i] === undefined);
  if (missing) throw usageError(`<${missing.name}> is required`, spec.name);
  return { options, positionals: parsed.positionals };
}

function wholeNumber(text: string, name: string, command: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw usageError(`--${name} must be a whole number, got "${text}"`, command);
  return n;
}

/** Help when asked for, else parse and run. */
export async function runCommand(spec: CommandSpec, argv: string[]): Promise<void> {
  if (asksForHelp(spec, argv)) {
    process.stdout.write(commandHelp(spec) + '\n');
    return;
  }
  const { options, positionals } = parseCommand(spec, argv);
  await spec.run(options, positionals);
}
