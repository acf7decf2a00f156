// The one schema for configs/<framework>.yaml: the seed's field names (snake_case, as researchers
// write them), strict so a misspelt key is an error, and the camelCase settings the code runs on.
import { z } from 'zod';
import { FRAMEWORKS } from '../core/program';
import { PROFILES } from '../evaluator/profiles';
import { DEFAULT_ENGINE, ENGINES, PRECISIONS } from '../engine/run';
import type { LlmSettings, PromptSettings } from '../contract';
export type { LlmSettings, PromptSettings };

/** Placeholders a prompt.user_template may use; prompt.ts fills them. */
export const TEMPLATE_FIELDS = [
  'framework',
  'iteration',
  'parent_block',
  'parent_metrics',
  'best',
  'attempts',
  'inspirations',
  'reply_instructions',
] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** Placeholders without which the model cannot do its job. */
const REQUIRED_TEMPLATE_FIELDS: readonly TemplateField[] = ['parent_block', 'reply_instructions'];

/** The user message used when a config has no prompt.user_template. */
export const DEFAULT_USER_TEMPLATE = `Iteration {iteration} of the {framework} run.

## Parent program: the EVOLVE-BLOCK you are changing
\`\`\`typescript
{parent_block}
\`\`\`
{parent_metrics}

## Best program so far
{best}

## Recent attempts, oldest first, with what went wrong
{attempts}

## Inspiration: top programs from the archive
{inspirations}

## Your task
Propose one focused change to the parent's EVOLVE-BLOCK that you expect to make the loss fall
faster with model size while staying causal, finite and trainable. If an attempt above was
refused, fix the cause it names before trying anything new.

{reply_instructions}
`;

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);
const modelName = z.string().trim().min(1);

const PriceSchema = z
  .object({
    prompt_per_mtok: z.number().nonnegative(),
    completion_per_mtok: z.number().nonnegative(),
  })
  .strict();

const LlmSchema = z
  .object({
    /** auto: an LLM when a key or base URL is configured, else the offline catalogue. */
    provider: z.enum(['auto', 'openai', 'offline']).default('auto'),
    primary_model: modelName,
    fallback_model: modelName.nullable().default(null),
    temperature: z.number().min(0).max(2).default(0.8),
    max_tokens: positiveInt.default(16_000),
    reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullable().default(null),
    api_base: z.string().url().nullable().default(null),
    api_key_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .default('OPENAI_API_KEY'),
    timeout_s: z.number().positive().default(600),
    max_retries: nonNegativeInt.max(20).default(4),
    max_retry_wait_s: z.number().nonnegative().default(300),
    prices: z.record(z.string(), PriceSchema).default({}),
    budget_usd: z.number().nonnegative().nullable().default(null),
  })
  .strict();

const PromptSchema = z
  .object({
    system_message: z.string().trim().min(1),
    user_template: z.string().trim().min(1).default(DEFAULT_USER_TEMPLATE),
    reply_format: z.enum(['diff', 'block']).default('diff'),
    max_attempts: positiveInt.max(20).default(3),
    inspirations: nonNegativeInt.max(10).default(3),
    history_window: nonNegativeInt.max(50).default(5),
  })
  .strict();

const SizeSchema = z
  .object({
    name: z.string().trim().min(1).optional(),
    d_model: positiveInt,
    n_layers: positiveInt,
    n_heads: positiveInt,
  })
  .strict();

const InitArgsSchema = z
  .object({
    training_steps: positiveInt,
    eval_frequency: positiveInt,
    batch_size: positiveInt,
    learning_rate: z.number().positive(),
    warmup_steps: nonNegativeInt,
    lr_schedule: z.enum(['cosine', 'linear', 'constant']),
    min_lr_ratio: z.number().min(0).max(1),
    weight_decay: z.number().nonnegative(),
    beta1: z.number().min(0).lt(1),
    beta2: z.number().min(0).lt(1),
    grad_clip: z.number().positive(),
    eval_tokens: positiveInt,
    checkpoint_every: positiveInt,
    seq_len: positiveInt,
    dropout: z.number().min(0).lt(1),
    seed: nonNegativeInt,
    fit_axis: z.enum(['non_embedding', 'total']),
    // At least 256 for a BPE, any size above the largest id for pre-tokenised data: prepareData checks which.
    vocab_size: z.number().int().positive(),
    corpus: z.union([z.literal('moby-dick'), z.array(z.string().trim().min(1)).nonempty()], {
      errorMap: () => ({ message: 'must be "moby-dick" or a list of paths: text or .jsonl files, folders of them, a nanoGPT folder or a .bin file' }),
    }),
    val_fraction: z.number().gt(0).lt(1),
    // false: the corpus alone; an object: synthetic copying segments mixed in (evaluator/data/copy-segments.ts).
    copy_segments: z.union([
      z.literal(false),
      z.object({ fraction: z.number().gt(0).lt(1), period: positiveInt, length: positiveInt, symbols: positiveInt }).strict(),
    ]),
    model_sizes: z.array(SizeSchema).min(2, 'needs at least two sizes to fit a scaling law'),
  })
  .partial()
  .strict();

const EvaluatorSchema = z
  .object({
    profile: z.enum(Object.keys(PROFILES) as [string, ...string[]]).default('full'),
    init_args: InitArgsSchema.default({}),
    /** A count (seeds counting up from init_args.seed or the profile's first) or a list; absent: the profile's. */
    seeds: z
      .union([positiveInt.max(64), z.array(nonNegativeInt).min(1).max(64)], {
        errorMap: () => ({ message: 'must be a count from 1 to 64 or a list of whole numbers' }),
      })
      .optional(),
    /** Which engine trains the run's programs; a device worker's EVOSCALE_ENGINE wins where set. */
    engine: z.enum(ENGINES).default(DEFAULT_ENGINE.engine),
    /** The torch engine's precision and compilation (tfjs trains in float32, uncompiled). */
    precision: z.enum(PRECISIONS).default(DEFAULT_ENGINE.precision),
    compile: z
      .union([z.boolean(), z.literal('reduce-overhead')], { errorMap: () => ({ message: 'must be true, false or reduce-overhead' }) })
      .default(DEFAULT_ENGINE.compile),
  })
  .strict();

const FitnessSchema = z
  .object({
    mode: z.enum(['slope', 'loss_delta', 'param_multiplier', 'extrapolated']).optional(),
    confidence: z.number().gt(0.5).lt(1).optional(),
    margin: z.number().nonnegative().optional(),
    resamples: positiveInt.min(100).max(100_000).optional(),
    early_stop: z
      .union([z.literal('auto'), z.literal(false), nonNegativeInt], { errorMap: () => ({ message: 'must be auto, false or a seed count' }) })
      .optional(),
  })
  .strict();

const ScreenSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Absent: a tenth of the profile's training steps (config/run-settings.ts). */
    steps: z.number().int().positive().optional(),
    margin: z.number().nonnegative().default(0.05),
  })
  .strict();

const ValidationSchema = z
  .object({
    time_multiple: z.number().positive().default(8),
    wall_timeout_s: z.number().positive().default(300),
    screen: ScreenSchema.default({}),
  })
  .strict();

export const RunConfigSchema = z
  .object({
    framework: z.enum(FRAMEWORKS),
    max_iterations: nonNegativeInt,
    checkpoint_interval: positiveInt.default(5),
    population_size: z
      .literal(1, { errorMap: () => ({ message: 'only 1 is supported (as in the seed: the best program so far is the parent)' }) })
      .default(1),
    save_all_programs: z.boolean().default(true),
    llm: LlmSchema,
    prompt: PromptSchema,
    evaluator: EvaluatorSchema.default({}),
    fitness: FitnessSchema.default({}),
    validation: ValidationSchema.default({}),
  })
  .strict()
  .superRefine((cfg, issue) => {
    const template = cfg.prompt.user_template;
    for (const m of template.matchAll(/\{([a-z_]+)\}/g)) {
      if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1])) {
        issue.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['prompt', 'user_template'],
          message: `unknown template field {${m[1]}} (known: ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(', ')})`,
        });
      }
    }
    for (const f of REQUIRED_TEMPLATE_FIELDS) {
      if (!template.includes(`{${f}}`)) {
        issue.addIssue({ code: z.ZodIssueCode.custom, path: ['prompt', 'user_template'], message: `must contain the template field {${f}}` });
      }
    }
    if (cfg.evaluator.engine === 'tfjs') {
      // The torch engine's settings on a run that never trains on torch are a mistake, not a no-op.
      if (cfg.evaluator.precision !== 'fp32') issue.addIssue({ code: z.ZodIssueCode.custom, path: ['evaluator', 'precision'], message: `${cfg.evaluator.precision} is a torch engine setting, but evaluator.engine is tfjs (float32 only)` });
      if (cfg.evaluator.compile) issue.addIssue({ code: z.ZodIssueCode.custom, path: ['evaluator', 'compile'], message: 'torch.compile is a torch engine setting, but evaluator.engine is tfjs' });
    }
    const seeds = cfg.evaluator.seeds;
    if (Array.isArray(seeds) && new Set(seeds).size !== seeds.length) {
      issue.addIssue({ code: z.ZodIssueCode.custom, path: ['evaluator', 'seeds'], message: `seeds repeat: ${seeds.join(', ')}` });
    }
    (cfg.evaluator.init_args.model_sizes ?? []).forEach((s, i) => {
      if (s.d_model % s.n_heads !== 0) {
        issue.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['evaluator', 'init_args', 'model_sizes', i, 'n_heads'],
          message: `must divide d_model (${s.d_model} is not a multiple of ${s.n_heads})`,
        });
      }
    });
    // A budget is only a budget when every model that can be called has a price.
    if (cfg.llm.budget_usd !== null) {
      for (const [key, model] of [['primary_model', cfg.llm.primary_model], ['fallback_model', cfg.llm.fallback_model]] as const) {
        if (model !== null && priceFor(cfg.llm.prices, model) === undefined) {
          issue.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['llm', key],
            message: `llm.budget_usd is set but llm.prices has no entry for "${model}"`,
          });
        }
      }
    }
  });

export type RunConfigFile = z.infer<typeof RunConfigSchema>;

/** The seed's OpenEvolve loop settings that have no counterpart in RunSettings. */
export interface EvolutionSettings {
  /** Iterations between archive snapshots of the best program and the summary. */
  checkpointInterval: number;
  populationSize: 1;
  /** Keep every candidate's program in the archive, not only accepted ones. */
  saveAllPrograms: boolean;
}

/** A model's price: exact name first, then without a router prefix ("openai/gpt-5" → "gpt-5"). */
export function priceFor<P>(prices: Record<string, P>, model: string): P | undefined {
  return prices[model] ?? prices[model.slice(model.lastIndexOf('/') + 1)];
}

export function llmSettingsFrom(llm: RunConfigFile['llm']): LlmSettings {
  return {
    provider: llm.provider,
    primaryModel: llm.primary_model,
    fallbackModel: llm.fallback_model,
    temperature: llm.temperature,
    maxTokens: llm.max_tokens,
    reasoningEffort: llm.reasoning_effort,
    apiBase: llm.api_base,
    apiKeyEnv: llm.api_key_env,
    timeoutS: llm.timeout_s,
    maxRetries: llm.max_retries,
    maxRetryWaitS: llm.max_retry_wait_s,
    prices: Object.fromEntries(
      Object.entries(llm.prices).map(([model, p]) => [model, { promptPerMTok: p.prompt_per_mtok, completionPerMTok: p.completion_per_mtok }]),
    ),
    budgetUsd: llm.budget_usd,
  };
}

export function promptSettingsFrom(prompt: RunConfigFile['prompt']): PromptSettings {
  return {
    systemMessage: prompt.system_message,
    userTemplate: prompt.user_template,
    replyFormat: prompt.reply_format,
    maxAttempts: prompt.max_attempts,
    inspirations: prompt.inspirations,
    historyWindow: prompt.history_window,
  };
}
