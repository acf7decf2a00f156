// Control programs for tests (test/fixtures/controls/): blocks with a known verdict or a known relation
// to the baseline, kept as framework-shaped files and read as text like any candidate.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { extractBlock, type Framework } from '../../core/program';
import { repoRoot } from '../../core/paths';

/**
 * causal-mean: y_i = mean of v_j over j ≤ i, valid in every framework, worse than attention.
 * self-only: y_i = v_i, no mixing at all (the baseline's parameters).
 * baseline-split-scale: the coefficient-dynamics baseline with 1/√d split over q and k — same function, other hash.
 * noncausal-<framework>: a plausible mistake that reads the future.
 */
export type ControlName = 'causal-mean' | 'self-only' | 'baseline-split-scale' | `noncausal-${Framework}`;

export function controlPath(name: ControlName): string {
  return path.join(repoRoot, 'test', 'fixtures', 'controls', `${name}.ts`);
}

export function controlBlock(name: ControlName): string {
  const file = controlPath(name);
  return extractBlock(fs.readFileSync(file, 'utf8'), file);
}
