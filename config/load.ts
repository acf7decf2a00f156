// Reads configs/<framework>.yaml into a run's settings. Every problem is one line naming the key and
// its line in the file, so a researcher editing YAML by hand sees at once what to fix and where.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { EvoError } from '../core/errors';
import { repoRoot } from '../core/paths';
import type { EvaluatorSettings } from '../evaluator/profiles';
import type { Framework } from '../core/program';
import type { RunSettings } from '../contract';
import { runSettings } from './run-settings';
import {
  llmSettingsFrom,
  promptSettingsFrom,
  RunConfigSchema,
  type EvolutionSettings,
  type LlmSettings,
  type PromptSettings,
  type RunConfigFile,
} from './schema';

export type RunConfig = RunSettings & {
  llm: LlmSettings;
  prompt: PromptSettings;
  evolution: EvolutionSettings;
  /** Absolute path of the YAML file the settings came from. */
  configPath: string;
  /** One-line remarks for the user about how the settings were put together. */
  notices: string[];
};

export interface ConfigOverrides {
  /** A profile from the command line: replaces evaluator.profile, and its init_args with it. */
  profile?: string;
  /** Iterations from the command line: replaces max_iterations. */
  iterations?: number;
}

export interface ConfigIssue {
  /** Dotted key path ("llm.temperature", "evaluator.init_args.model_sizes[1].n_heads"). */
  key: string;
  /** 1-based line in the YAML file (0 when the problem has no place, e.g. an empty file). */
  line: number;
  message: string;
}

/** A config that cannot be used; `message` is one line naming the file, line and key. */
export class ConfigError extends EvoError {
  constructor(message: string, readonly issues: ConfigIssue[]) {
    super(message, 'BAD_CONFIG');
    this.name = 'ConfigError';
  }
}

/** The workflow's settings from a loaded config: what the run needs, without the loader's remarks. */
export function runSettingsOf(cfg: RunConfig): RunSettings {
  const { configPath: _path, notices: _notices, evolution: _evolution, ...settings } = cfg;
  return settings;
}

export function defaultConfigPath(framework: Framework): string {
  return path.join(repoRoot, 'configs', `${framework}.yaml`);
}

/**
 * Reads, validates and resolves a config. Precedence, lowest first: the profile named in
 * evaluator.profile, then evaluator.init_args, then the command line. A command-line profile
 * different from the file's replaces the file's evaluator settings as a whole — init_args and
 * max_iterations were written for the file's profile — and a notice says so.
 */
export function loadRunConfig(file: string, overrides: ConfigOverrides = {}): RunConfig {
  const configPath = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch (err) {
    throw new EvoError(`config ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'BAD_CONFIG');
  }
  const cfg = parseRunConfig(text, displayName(configPath));
  return resolveRunConfig(cfg, configPath, overrides);
}

/** Parses and validates YAML text; `where` names the file in messages. */
export function parseRunConfig(text: string, where: string): RunConfigFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lineCounter.linePos(e.pos[0]);
    const at = `${where}:${pos.line}:${pos.col}`;
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more YAML errors)` : '';
    throw new ConfigError(`${at}: malformed YAML: ${firstLine(e.message)}${more}`, [
      { key: '', line: pos.line, message: firstLine(e.message) },
    ]);
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) {
    throw new ConfigError(`${where}: the config is empty`, [{ key: '', line: 0, message: 'empty' }]);
  }
  const result = RunConfigSchema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((i) => describeIssue(i, doc, lineCounter));
  const shown = issues.slice(0, 3).map((i) => `${i.line > 0 ? `${where}:${i.line}` : where}: ${i.message}`);
  const left = issues.length - shown.length;
  const more = left > 0 ? `; and ${left} more problem${left === 1 ? '' : 's'}` : '';
  throw new ConfigError(shown.join('; ') + more, issues);
}

function resolveRunConfig(cfg: RunConfigFile, configPath: string, overrides: ConfigOverrides): RunConfig {
  const notices: string[] = [];
  const fileProfile = cfg.evaluator.profile;
  const profile = overrides.profile ?? fileProfile;
  const profileReplaced = profile !== fileProfile;
  if (profileReplaced) {
    const dropped = Object.keys(cfg.evaluator.init_args);
    notices.push(
      `profile ${profile} (command line) replaces the config's profile ${fileProfile}` +
        (dropped.length ? `; evaluator.init_args (${dropped.join(', ')}) not applied` : '') +
        (overrides.iterations === undefined ? `; max_iterations ${cfg.max_iterations} not applied` : ''),
    );
  }
  const base = runSettings({
    framework: cfg.framework,
    profile,
    iterations: overrides.iterations ?? (profileReplaced ? undefined : cfg.max_iterations),
    mutation: { provider: 'offline', maxAttempts: cfg.prompt.max_attempts },
    engine: { engine: cfg.evaluator.engine, precision: cfg.evaluator.precision, compile: cfg.evaluator.compile },
  });
  const evaluator = profileReplaced ? base.evaluator : applyInitArgs(base.evaluator, cfg.evaluator.init_args, configPath);
  const seeds = cfg.evaluator.seeds;
  if (typeof seeds === 'number') evaluator.seeds = Array.from({ length: seeds }, (_, i) => evaluator.seeds[0] + i);
  else if (seeds) evaluator.seeds = [...seeds];
  checkEvaluator(evaluator, displayName(configPath));
  return {
    ...base,
    seed: evaluator.seeds[0],
    evaluator,
    fitness: {
      mode: cfg.fitness.mode ?? base.fitness.mode,
      level: cfg.fitness.confidence ?? base.fitness.level,
      margin: cfg.fitness.margin ?? base.fitness.margin,
      resamples: cfg.fitness.resamples ?? base.fitness.resamples,
      earlyStop: cfg.fitness.early_stop === false ? 0 : (cfg.fitness.early_stop ?? base.fitness.earlyStop),
    },
    validation: { timeMultiple: cfg.validation.time_multiple, wallTimeoutS: cfg.validation.wall_timeout_s },
    screen: { enabled: cfg.validation.screen.enabled, steps: cfg.validation.screen.steps ?? base.screen.steps, margin: cfg.validation.screen.margin },
    llm: llmSettingsFrom(cfg.llm),
    prompt: promptSettingsFrom(cfg.prompt),
    evolution: {
      checkpointInterval: cfg.checkpoint_interval,
      populationSize: cfg.population_size,
      saveAllPrograms: cfg.save_all_programs,
    },
    configPath,
    notices,
  };
}

/** The seed's evaluator.init_args over a profile; corpus paths are relative to the config file. */
function applyInitArgs(profile: EvaluatorSettings, a: RunConfigFile['evaluator']['init_args'], configPath: string): EvaluatorSettings {
  const ev = structuredClone(profile);
  const t = ev.training;
  if (a.training_steps !== undefined) t.steps = a.training_steps;
  if (a.eval_frequency !== undefined) t.evalEvery = a.eval_frequency;
  if (a.batch_size !== undefined) t.batchSize = a.batch_size;
  if (a.learning_rate !== undefined) t.learningRate = a.learning_rate;
  if (a.warmup_steps !== undefined) t.warmupSteps = a.warmup_steps;
  if (a.lr_schedule !== undefined) t.schedule = a.lr_schedule;
  if (a.min_lr_ratio !== undefined) t.minLrRatio = a.min_lr_ratio;
  if (a.weight_decay !== undefined) t.weightDecay = a.weight_decay;
  if (a.beta1 !== undefined) t.beta1 = a.beta1;
  if (a.beta2 !== undefined) t.beta2 = a.beta2;
  if (a.grad_clip !== undefined) t.gradClip = a.grad_clip;
  if (a.eval_tokens !== undefined) t.evalTokens = a.eval_tokens;
  if (a.checkpoint_every !== undefined) t.checkpointEvery = a.checkpoint_every;
  if (a.seq_len !== undefined) ev.seqLen = a.seq_len;
  if (a.dropout !== undefined) ev.dropout = a.dropout;
  if (a.seed !== undefined) ev.seeds = ev.seeds.map((_, i) => a.seed! + i);
  if (a.fit_axis !== undefined) ev.fitAxis = a.fit_axis;
  if (a.vocab_size !== undefined) ev.data.vocabSize = a.vocab_size;
  if (a.val_fraction !== undefined) ev.data.valFraction = a.val_fraction;
  if (a.copy_segments === false) delete ev.data.copySegments;
  else if (a.copy_segments !== undefined) ev.data.copySegments = a.copy_segments;
  if (a.corpus !== undefined) {
    ev.data.corpus = a.corpus === 'moby-dick' ? a.corpus : a.corpus.map((f) => path.resolve(path.dirname(configPath), f));
  }
  if (a.model_sizes !== undefined) {
    ev.sizes = a.model_sizes.map((s) => ({
      name: s.name ?? `d${s.d_model}-L${s.n_layers}-H${s.n_heads}`,
      dModel: s.d_model,
      nLayers: s.n_layers,
      nHeads: s.n_heads,
    }));
  }
  return ev;
}

/** Checks that only hold for the merged settings (a profile's value against an init_args one). */
function checkEvaluator(ev: EvaluatorSettings, where: string): void {
  const t = ev.training;
  const fail = (message: string) => {
    throw new ConfigError(`${where}: ${message}`, [{ key: 'evaluator', line: 0, message }]);
  };
  if (t.warmupSteps >= t.steps) fail(`warmup_steps (${t.warmupSteps}) must be fewer than training_steps (${t.steps}) in profile ${ev.profile} with evaluator.init_args`);
}

function displayName(configPath: string): string {
  const rel = path.relative(process.cwd(), configPath);
  return rel && !rel.startsWith('..') ? rel : configPath;
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}

function keyPath(p: (string | number)[]): string {
  return p.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

/** 1-based line of the key (or sequence item) at `p`, else of its nearest ancestor that exists. */
function lineOf(doc: Document, lc: LineCounter, p: (string | number)[]): number {
  for (let n = p.length; n >= 0; n--) {
    const offset = offsetOf(doc, p.slice(0, n));
    if (offset !== undefined) return lc.linePos(offset).line;
  }
  return 0;
}

function offsetOf(doc: Document, p: (string | number)[]): number | undefined {
  if (p.length === 0) return (doc.contents as Node | null)?.range?.[0];
  const parent = doc.getIn(p.slice(0, -1), true);
  const last = p[p.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((it) => keyName(it.key) === String(last));
    const key = pair?.key as Node | undefined;
    return key?.range?.[0];
  }
  if (isSeq(parent) && typeof last === 'number') return (parent.items[last] as Node | undefined)?.range?.[0];
  return undefined;
}

function keyName(key: unknown): string {
  if (key && typeof key === 'object' && 'value' in key) return String((key as { value: unknown }).value);
  return String(key);
}

/** The keys an object schema at `p` accepts (for "did you mean"). */
function knownKeys(p: (string | number)[]): string[] {
  let s: z.ZodTypeAny = RunConfigSchema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodEffects) t = t.innerType();
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
      else return t;
    }
  };
  for (const seg of p) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = s.shape[seg as string] ?? z.never();
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function suggestion(key: string, known: string[]): string {
  const best = known
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best.k}"?)` : '';
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function describeIssue(issue: z.ZodIssue, doc: Document, lc: LineCounter): ConfigIssue[] {
  const p = issue.path;
  const key = keyPath(p);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const known = knownKeys(p);
    return issue.keys.map((k) => {
      const full = keyPath([...p, k]);
      const line = lineOf(doc, lc, [...p, k]);
      if (/^api_?key$/i.test(k)) {
        return { key: full, line, message: `"${full}": API keys never go in a config file; set OPENAI_API_KEY (or the variable named by llm.api_key_env) in the workers' environment` };
      }
      return { key: full, line, message: `unknown key "${full}"${suggestion(k, known)}` };
    });
  }
  const line = lineOf(doc, lc, p);
  if (issue.code === z.ZodIssueCode.invalid_type) {
    if (issue.received === 'undefined') return [{ key, line, message: `missing required key "${key}"` }];
    const value = p.length ? doc.getIn(p) : doc.toJS();
    const what = key ? `"${key}"` : 'the config';
    return [{ key, line, message: `${what} must be ${article(issue.expected)}, got ${issue.received} ${describeValue(value)}` }];
  }
  if (issue.code === z.ZodIssueCode.invalid_enum_value) {
    return [{ key, line, message: `"${key}" must be one of ${issue.options.join(', ')}, got ${describeValue(issue.received)}` }];
  }
  return [{ key, line, message: `"${key}": ${lowerFirst(issue.message)}` }];
}

function article(expected: string): string {
  return expected === 'object' ? 'a mapping' : expected === 'array' ? 'a list' : /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
