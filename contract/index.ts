// The contract between workflows and activities: run settings, records, queue names and usage
// totals. Everything that crosses it is small JSON (paths, hashes, metrics), never weights or
// corpora. It imports nothing, so every stage and the workflow sandbox can depend on it.

export const FRAMEWORKS = ['coefficient_dynamics', 'test_time_regression', 'matrix_mixer'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export interface SizeSpec {
  name: string;
  dModel: number;
  nLayers: number;
  nHeads: number;
}

export type FitAxis = 'non_embedding' | 'total';

export interface EvaluatorSettings {
  profile: string;
  sizes: SizeSpec[];
  seqLen: number;
  dropout: number;
  training: TrainingConfig;
  data: DataSpec;
  /**
   * Training seeds: each sets a size's initialisation, data order and dropout. Every program in a
   * run is trained at every size with every seed, so candidate and baseline are paired by seed.
   */
  seeds: number[];
  /** Which parameter count is N in loss = a + b·ln N (Kaplan et al. exclude embeddings). */
  fitAxis: FitAxis;
  /** The engine the run asks its trainings to use (a device worker's EVOSCALE_ENGINE wins); absent: auto, fp32, no compile. */
  engine?: EngineSettings;
}

export type EngineChoice = 'auto' | 'tfjs' | 'torch';

/** The run's engine, and the torch engine's own settings (tfjs trains in float32, uncompiled). */
export interface EngineSettings {
  engine: EngineChoice;
  /** Torch only: fp32, TF32 matmuls, or bf16 autocast. */
  precision: 'fp32' | 'tf32' | 'bf16';
  /**
   * Torch only: torch.compile the loss (torch 2.x): `true` in its default mode, or `reduce-overhead`, which on
   * CUDA also replays the compiled forward and backward as CUDA graphs.
   */
  compile: boolean | 'reduce-overhead';
}

export interface TrainingConfig {
  steps: number;
  batchSize: number;
  learningRate: number;
  warmupSteps: number;
  /** After warmup: cosine or linear decay to minLrRatio·lr, or constant. */
  schedule: 'cosine' | 'linear' | 'constant';
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  gradClip: number;
  evalEvery: number;
  /** Validation tokens scored at each evaluation (a fixed, contiguous prefix of the split). */
  evalTokens: number;
  checkpointEvery: number;
}

export interface DataSpec {
  /** Text files, .jsonl files, folders of them, a nanoGPT folder (train.bin, val.bin) or one .bin file; or the bundled novel. */
  corpus: string[] | 'moby-dick';
  /** The BPE's size, or for pre-tokenised data any size above its largest token id. */
  vocabSize: number;
  valFraction: number;
  /** Synthetic copying segments mixed into both splits (evaluator/data/copy-segments.ts); absent: the corpus alone. */
  copySegments?: CopySegments;
}

/** Segments of `period` random symbols (of the `symbols` ids the text uses least) repeated to `length` tokens; `fraction` of the stream. */
export interface CopySegments {
  fraction: number;
  period: number;
  length: number;
  symbols: number;
}

export interface PreparedData {
  /** Content hash of (corpus bytes and their formats, vocabSize, valFraction, format version), 16 hex digits. */
  hash: string;
  /** cacheDir('data', hash) */
  dir: string;
  vocabSize: number;
  /** 'bpe': a byte-level BPE trained on the corpus; 'pretokenized': nanoGPT .bin token ids used as they are. */
  tokenizer: 'bpe' | 'pretokenized';
  /** HF tokenizer.json: byte-level BPE cut to vocabSize, with a ByteLevel decoder; null for pre-tokenised data. */
  tokenizerPath: string | null;
  trainPath: string;
  valPath: string;
  trainTokens: number;
  valTokens: number;
}

export interface ModelPrice {
  /** USD per million prompt (input) tokens. */
  promptPerMTok: number;
  /** USD per million completion (output, including reasoning) tokens. */
  completionPerMTok: number;
}

/** The LLM client's settings. Holds no secret: the key is read from `apiKeyEnv` in the worker's environment. */
export interface LlmSettings {
  provider: 'auto' | 'openai' | 'offline';
  primaryModel: string;
  fallbackModel: string | null;
  temperature: number;
  maxTokens: number;
  /** Sent to reasoning models only. */
  reasoningEffort: 'minimal' | 'low' | 'medium' | 'high' | null;
  /** Base URL of an OpenAI-compatible API; null: OPENAI_BASE_URL, else OpenAI. */
  apiBase: string | null;
  /** Environment variable holding the API key. */
  apiKeyEnv: string;
  timeoutS: number;
  /** Retries per model after a 429, 5xx, timeout or connection error. */
  maxRetries: number;
  /** Most seconds spent waiting between retries, per model. */
  maxRetryWaitS: number;
  prices: Record<string, ModelPrice>;
  /** Spend after which no new mutation is requested; null: no limit. */
  budgetUsd: number | null;
}

export interface PromptSettings {
  systemMessage: string;
  userTemplate: string;
  replyFormat: 'diff' | 'block';
  /** Proposals per iteration before the iteration is recorded as invalid. */
  maxAttempts: number;
  /** Top archive programs shown as inspiration. */
  inspirations: number;
  /** Earlier attempts shown with their outcome and errors. */
  historyWindow: number;
}

/** Sums without the call list: what workflow state, summary.json and `evo status` carry. */
export interface UsageTotals {
  calls: number;
  failedCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  byModel: Record<string, Omit<UsageTotals, 'byModel' | 'replies'>>;
  /**
   * Every stored LLM reply these totals count, by its reply-store key (propose/llm/replies.ts), with
   * what it cost. A reply reaches a run's totals again when its iteration runs again (after `evo resume`)
   * or its step is retried; adding totals counts each key once. Absent when no reply was stored.
   */
  replies?: Record<string, ReplyCharge>;
}

/** One stored reply's share of the totals: the call that produced it, paid once. */
export interface ReplyCharge {
  model: string;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** A scaling-law fit `loss = a + b·ln N` as records carry it. */
export interface FitSummary {
  intercept: number;
  slope: number;
  r2: number;
  /** Standard error of the slope; null with fewer than three points (no residual degrees of freedom). */
  slopeStdErr: number | null;
}

/** The child workflow of a run's iteration i: `<runId>/iter-NNN`. */
export function iterationWorkflowId(runId: string, iteration: number): string {
  return `${runId}/iter-${String(iteration).padStart(3, '0')}`;
}

/** What a training activity reports in each heartbeat: where it is, for `evo status` and the Web UI. */
export interface TrainingHeartbeat {
  size: string;
  seed: number;
  step: number;
  steps: number;
  /** The step this attempt started from (a checkpoint after a retry). */
  resumedFromStep: number;
  trainLoss?: number;
  valLoss?: number;
}

export const CONTROL_QUEUE = 'evoscale-control';
export const TRAIN_QUEUE = 'evoscale-train';
/** The failure type of a candidate's own fault in a step (activities/errors.ts): final, and the workflow records the candidate as invalid. */
export const CANDIDATE_FAILED = 'CandidateFailed';
/** The failure type of an iteration that failed; its details hold `{ usage }`, the LLM usage it had paid for. */
export const ITERATION_FAILED = 'IterationFailed';

export interface MutationSettings {
  /** 'offline': the published-variant catalogue; 'files': replay blocks from a folder, in name order. */
  provider: 'offline' | 'files';
  /** For provider 'files': the folder of block files. */
  dir?: string;
  /** Proposals per iteration before the iteration is recorded as invalid. */
  maxAttempts: number;
}

export interface ValidationSettings {
  /** Allowed time per forward+backward as a multiple of the baseline's. */
  timeMultiple: number;
  wallTimeoutS: number;
}

/**
 * The cheap screen: a short training of the smallest size before the full one, refusing
 * candidates worse than the baseline there by more than `margin` nats. It only filters.
 */
export interface ScreenSettings {
  enabled: boolean;
  steps: number;
  margin: number;
}

/** How a candidate is scored against the baseline, and how sure selection must be. */
export type FitnessMode = 'slope' | 'loss_delta' | 'param_multiplier' | 'extrapolated';

export interface FitnessSettings {
  mode: FitnessMode;
  /** Two-sided coverage of the bootstrap intervals (0.95). */
  level: number;
  /** A candidate replaces its parent only when the interval of (candidate − parent) lies above this. */
  margin: number;
  /** Seed resamples per bootstrap. */
  resamples: number;
  /**
   * Sequential evaluation: after this many seeds, a candidate worse than its parent on each of them
   * stops (score/early-stop.ts). `auto`: the fewest seeds at which stopping cannot overturn the
   * decision; 0: off. Absent in runs started before it existed (off).
   */
  earlyStop?: 'auto' | number;
}

export interface RunSettings {
  framework: Framework;
  /** Iterations after the baseline (iteration 0). */
  iterations: number;
  /** The run's own randomness (which mutation the offline catalogue draws). */
  seed: number;
  evaluator: EvaluatorSettings;
  fitness: FitnessSettings;
  mutation: MutationSettings;
  validation: ValidationSettings;
  screen: ScreenSettings;
  /** Heartbeat timeout of a training activity: how soon a killed device worker is noticed. */
  heartbeatTimeoutS: number;
  /** Start-to-close limit of one size's training. */
  trainTimeoutH: number;
  /** LLM and prompt settings from the run's config (absent: no LLM; the offline catalogue proposes). */
  llm?: LlmSettings;
  prompt?: PromptSettings;
}

/** One training: one program at one size with one seed. */
export interface SeedRun {
  size: string;
  seed: number;
  nonEmbeddingParams: number;
  totalParams: number;
  valLoss: number;
  steps: number;
  backend: string;
  resumedFromStep: number;
  /** Wall milliseconds per training step (evaluation excluded): shown beside the fitness, never part of it. */
  msPerStep: number;
  /** Bytes held by tensors at the end of a forward pass (activations kept for the backward pass, and weights). */
  peakBytes: number;
  /** On the torch engine: the hash of the traced graph it trained (`runs/<id>/graphs/<hash>.json`). */
  graph?: string;
}

/** One size of one program over every seed of the run. */
export interface SizePoint {
  size: string;
  nonEmbeddingParams: number;
  totalParams: number;
  /** Mean of valLossBySeed. */
  valLoss: number;
  /** Final validation loss per seed, in the order of `seeds`. */
  valLossBySeed: number[];
  seeds: number[];
  steps: number;
  backend: string;
  /** Highest step any seed resumed from after an interruption (0: none was interrupted). */
  resumedFromStep: number;
  /** Means over seeds. */
  msPerStep: number;
  peakBytes: number;
  /** The traced graph the torch engine trained at this size (one shape, so one graph for every seed). */
  graph?: string;
}

/** A fitness with its bootstrap interval over seeds (lo = hi = value with one seed). */
export interface FitnessInterval {
  value: number;
  lo: number;
  hi: number;
  level: number;
}

export type IterationStatus = 'accepted' | 'rejected' | 'invalid';

export interface AttemptRecord {
  /** Null when the reply was refused before it became a program. */
  programHash: string | null;
  description: string;
  error: string;
  kind: 'reply-refused' | 'validation-failed';
}

export interface IterationRecord {
  iteration: number;
  status: IterationStatus;
  programHash: string | null;
  parentHash: string | null;
  description: string;
  points: SizePoint[];
  fit: FitSummary | null;
  /** In the run's fitness mode, relative to the baseline (which scores 0) except in mode `slope`. */
  fitness: number | null;
  fitnessMode?: FitnessMode;
  fitnessCi?: [number, number];
  /** The seed's −slope with its interval, always reported for comparison. */
  seedSlope?: { fitness: number; ci: [number, number] };
  /** Candidate − parent in the fitness mode, the interval selection decides on. */
  vsParent?: FitnessInterval;
  /** Why the iteration ended as it did, in words. */
  decision?: string;
  /** Time per step and tensor memory relative to the baseline at the largest size (1 = the same). */
  cost?: { timeRatio: number; memoryRatio: number };
  error?: string;
  /** Proposals refused by validation, in order (when every one was refused, the last is `programHash`). */
  failedAttempts: AttemptRecord[];
  /** Proposals this iteration drew from the mutation provider (0 for the baseline). */
  proposals: number;
  /** LLM tokens and cost of this iteration's proposals. */
  usage: UsageTotals;
  /** The cheap screen's losses, when it ran (and on torch the graph of its training). */
  screen?: { size: string; steps: number; valLoss: number; baselineValLoss: number; graph?: string };
}

export type RunStatus = 'running' | 'paused' | 'stopping' | 'completed' | 'stopped';

/** What a run's summary and its workflow's state have in common. */
interface RunHeader {
  workflowId: string;
  framework: Framework;
  profile: string;
  status: RunStatus;
  best: { iteration: number; fitness: number; programHash: string } | null;
  /** LLM tokens and cost of the whole run. */
  usage: UsageTotals;
  /** Why the run is paused or stopped early (budget spent, the LLM refusing our credentials…). */
  reason?: string;
  /** The prepared corpus the run trains on (`cache/data/<hash>`, kept by `evo gc`); absent in archives written before it was recorded. */
  dataHash?: string;
}

/** A run as summary.json, `evo status` and `evo report` show it: every iteration's full record. */
export interface RunSummary extends RunHeader {
  iterations: IterationRecord[];
}

/** One iteration as the evolution workflow keeps it; its full record is the archive's `iterations/iter-NNN.json`. */
export interface IterationBrief {
  iteration: number;
  status: IterationStatus;
  programHash: string | null;
  fitness: number | null;
  proposals: number;
}

/**
 * The evolution workflow's state: its `status` query's answer, its result, what it carries when it
 * continues as new and what `writeRunSummary` composes summary.json from (with the archive's records).
 * It grows by one brief (and the charges of its LLM replies) per iteration, about 200 bytes where a
 * record takes 1–3 kB, so thousands of iterations stay below Temporal's 2 MB payload limit.
 */
export interface RunState extends RunHeader {
  iterations: IterationBrief[];
  /** The baseline's and the current best's trained sizes: what each candidate is scored against. */
  baselinePoints: SizePoint[] | null;
  bestPoints: SizePoint[] | null;
  /** How the last iteration ended, in words (the Web UI's details). */
  lastOutcome?: string;
}

export interface EvolutionInput {
  settings: RunSettings;
  /**
   * Set when the workflow continues as new: the state so far, and a pause or stop signalled before it.
   * Runs continued before the state was compact carried their whole `summary` instead.
   */
  carried?: { state?: RunState; summary?: RunSummary; data: PreparedData; paused?: boolean; stopRequested?: boolean };
}

export interface IterationInput {
  runId: string;
  settings: RunSettings;
  iteration: number;
  data: PreparedData;
  /** The parent program (null for iteration 0, the baseline). */
  parentHash: string | null;
  /** The parent's and the baseline's trained sizes, to score the candidate against (null at iteration 0). */
  parentPoints: SizePoint[] | null;
  baselinePoints: SizePoint[] | null;
  /** Earlier iterations' programs, so proposals don't repeat them. */
  history: { programHash: string | null; fitness: number | null; status: IterationStatus }[];
  /** Proposals made before this iteration (the files provider replays in order). */
  proposalIndex: number;
  /** The run's baseline program (iteration 0), the screen's reference. */
  baselineHash: string | null;
}

export interface Candidate {
  /** Null when the provider's reply was refused (see `refused`). */
  programHash: string | null;
  description: string;
  provider: string;
  /** Why the reply could not become a program; fed back into the next attempt's prompt. */
  refused?: string;
  usage: UsageTotals;
}
