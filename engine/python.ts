// Finds the Python interpreter the torch engine runs under: EVOSCALE_PYTHON when set, else the first
// of a few usual ones that imports torch ≥ 1.13 (a pyenv shim first on PATH may not see a system torch).
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { EvoError } from '../core/errors';
import { repoRoot } from '../core/paths';

/** The folder holding the `evoscale_engine` package: PYTHONPATH for the interpreter. */
export const enginePackageDir = path.join(repoRoot, 'engine');

const CANDIDATES = ['python3', '/usr/bin/python3', '/usr/local/bin/python3', 'python'];
const PROBE = 'import re, torch; v = tuple(int(p) for p in re.findall(r"\\d+", torch.__version__)[:2]); print(torch.__version__); raise SystemExit(0 if v >= (1, 13) else 3)';

export interface TorchPython {
  python: string;
  torchVersion: string;
}

/**
 * Asks an interpreter for its torch, without blocking: importing torch takes seconds (more on a loaded
 * machine), and a device worker must keep heartbeating its training meanwhile.
 */
function probe(python: string): Promise<{ ok: boolean; version?: string; why: string }> {
  return new Promise((resolve) => {
    execFile(python, ['-c', PROBE], { encoding: 'utf8', timeout: 60_000 }, (err, stdout) => {
      const version = stdout.trim();
      const status = err ? (err as { code?: unknown }).code : 0;
      if (status === 0) resolve({ ok: true, version, why: '' });
      else if (status === 3) resolve({ ok: false, version, why: `torch ${version} is older than 1.13` });
      else if (typeof status === 'number') resolve({ ok: false, why: 'cannot import torch' });
      else resolve({ ok: false, why: err!.message.split('\n')[0] });
    });
  });
}

let found: TorchPython | undefined;
/** EVOSCALE_PYTHON interpreters that passed the probe: every training asks, and importing torch takes seconds. */
const probed = new Map<string, TorchPython>();

/** The interpreter to run the engine with; a one-line EvoError when none imports a recent enough torch. */
export async function findTorchPython(env: NodeJS.ProcessEnv = process.env): Promise<TorchPython> {
  const chosen = env.EVOSCALE_PYTHON?.trim();
  if (chosen) {
    const known = probed.get(chosen);
    if (known) return known;
    const r = await probe(chosen);
    if (!r.ok) throw new EvoError(`EVOSCALE_PYTHON=${chosen}: ${r.why}`, 'NO_TORCH');
    const python = { python: chosen, torchVersion: r.version! };
    probed.set(chosen, python);
    return python;
  }
  if (found) return found;
  const reasons: string[] = [];
  for (const python of CANDIDATES) {
    const r = await probe(python);
    if (r.ok) return (found = { python, torchVersion: r.version! });
    reasons.push(`${python}: ${r.why}`);
  }
  throw new EvoError(`no Python interpreter imports torch >= 1.13 (${reasons.join('; ')}); install it or set EVOSCALE_PYTHON`, 'NO_TORCH');
}
