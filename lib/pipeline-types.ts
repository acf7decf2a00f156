// The typed boundary between workflows and activities: everything that crosses it is small JSON
// (paths, hashes, metrics), never weights or corpora. Workflow code imports these as types only.
import type { EvaluatorSettings } from './profiles';
import type { Framework } from './program';
import type { PreparedData } from './data/prepare';
import type { ScalingFit } from './scaling';
import type { LlmSettings, PromptSettings } from './config/schema';
import type { UsageTotals } from './mutation/ledger';

export const CONTROL_QUEUE = 'evoscale-control';
export const TRAIN_QUEUE = 'evoscale-train';

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

export interface RunSettings {
  framework: Framework;
  /** Iterations after the baseline (iteration 0). */
  iterations: number;
  seed: number;
  evaluator: EvaluatorSettings;
  mutation: MutationSettings;
  validation: ValidationSettings;
  screen: ScreenSettings;
  /** Heartbeat timeout of a training activity: how soon a killed device worker is noticed. */
  heartbeatTimeoutS: number;
  /** Start-to-close limit of one size's training. */
  trainTimeoutH: number;
  /** LLM and prompt settings from the run's config (absent: those of configs/<framework>.yaml). */
  llm?: LlmSettings;
  prompt?: PromptSettings;
}

export interface SizePoint {
  size: string;
  nonEmbeddingParams: number;
  totalParams: number;
  valLoss: number;
  steps: number;
  backend: string;
  resumedFromStep: number;
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
  fit: Pick<ScalingFit, 'intercept' | 'slope' | 'r2' | 'slopeStdErr'> | null;
  fitness: number | null;
  error?: string;
  /** Proposals refused by validation, in order (when every one was refused, the last is `programHash`). */
  failedAttempts: AttemptRecord[];
  /** Proposals this iteration drew from the mutation provider (0 for the baseline). */
  proposals: number;
  /** LLM tokens and cost of this iteration's proposals. */
  usage: UsageTotals;
  /** The cheap screen's losses, when it ran. */
  screen?: { size: string; steps: number; valLoss: number; baselineValLoss: number };
}

export type RunStatus = 'running' | 'paused' | 'stopping' | 'completed' | 'stopped';

export interface RunSummary {
  workflowId: string;
  framework: Framework;
  profile: string;
  status: RunStatus;
  iterations: IterationRecord[];
  best: { iteration: number; fitness: number; programHash: string } | null;
  /** LLM tokens and cost of the whole run. */
  usage: UsageTotals;
  /** Why the run is paused or stopped early (budget spent, the LLM refusing our credentials…). */
  reason?: string;
}

export interface EvolutionInput {
  settings: RunSettings;
  /** Set when the workflow continues as new: the state so far. */
  carried?: { summary: RunSummary; data: PreparedData };
}

export interface IterationInput {
  runId: string;
  settings: RunSettings;
  iteration: number;
  data: PreparedData;
  /** The parent program (null for iteration 0, the baseline). */
  parentHash: string | null;
  bestFitness: number | null;
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
