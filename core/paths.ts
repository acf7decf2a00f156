// The one place that decides where evoscale keeps state, caches and run archives.
import * as path from 'node:path';

/** The repository root (this file compiles to dist/core/paths.js). */
export const repoRoot = path.resolve(__dirname, '..', '..');

/** State folder: caches, the Temporal SQLite file, pid files and logs. Override with EVOSCALE_HOME. */
export function stateDir(): string {
  return path.resolve(process.env.EVOSCALE_HOME ?? path.join(repoRoot, '.evoscale'));
}

export function cacheDir(...parts: string[]): string {
  return path.join(stateDir(), 'cache', ...parts);
}

/** Run archives (`runs/<workflowId>/`). Override with EVOSCALE_RUNS_DIR. */
export function runsDir(...parts: string[]): string {
  return path.join(path.resolve(process.env.EVOSCALE_RUNS_DIR ?? path.join(repoRoot, 'runs')), ...parts);
}

export function frameworkSourcePath(framework: string): string {
  return path.join(repoRoot, 'frameworks', `${framework}.ts`);
}

/** Sources of the offline catalogue's variants: their blocks are read as text, which dist/ does not hold. */
export const variantSourceDir = path.join(repoRoot, 'propose', 'offline', 'variants');

export function variantSourcePath(id: string): string {
  return path.join(variantSourceDir, `${id}.ts`);
}
