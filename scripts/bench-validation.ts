// `node dist/scripts/bench-validation.js` (after `npx tsc -p tsconfig.json`): what checking every training size costs. Validates the three framework
// baselines with a profile's validation spec twice, interleaved so that machine load weighs on both alike:
// at the largest size's shape only (how validation ran before it covered every size) and at every size's
// shape, and prints the wall time of each and their ratio.
// Usage: node dist/scripts/bench-validation.js [--profile smoke] [--rounds 2]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { baselineProgram, FRAMEWORKS } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { validationSpec } from '../config/run-settings';
import { validateProgram, type ValidationSpec } from '../validate';
import { exitWithError, progress, table } from '../core/output';

async function timed(spec: ValidationSpec, framework: (typeof FRAMEWORKS)[number], scratch: string): Promise<number> {
  const t0 = performance.now();
  const report = await validateProgram(baselineProgram(framework), spec, scratch);
  if (!report.ok) throw new Error(`the ${framework} baseline was refused: ${report.reason}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { profile: { type: 'string', default: 'smoke' }, rounds: { type: 'string', default: '2' } } });
  const settings = profileSettings(values.profile!);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a whole number ≥ 1, got ${values.rounds}`);
  const every = validationSpec(settings);
  const largestOnly: ValidationSpec = { ...every, otherSizes: [] };
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-bench-validation-'));
  const rows: string[][] = [];
  let oneTotal = 0;
  let everyTotal = 0;
  try {
    for (const framework of FRAMEWORKS) {
      let one = 0;
      let all = 0;
      for (let round = 0; round < rounds; round++) {
        progress(`${settings.profile} ${framework}: round ${round + 1} of ${rounds}`);
        one += await timed(largestOnly, framework, scratch);
        all += await timed(every, framework, scratch);
      }
      oneTotal += one;
      everyTotal += all;
      rows.push([framework, (one / rounds / 1000).toFixed(2), (all / rounds / 1000).toFixed(2), (all / one).toFixed(2)]);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  rows.push(['all', (oneTotal / rounds / 1000).toFixed(2), (everyTotal / rounds / 1000).toFixed(2), (everyTotal / oneTotal).toFixed(2)]);
  const shapes = [...new Set([every, ...(every.otherSizes ?? [])].map((s) => `${s.dModel}/${s.nHeads}`))].join(', ');
  console.log(`profile ${settings.profile}: T ${every.seqLen}, batch ${every.batch}, shapes (D/H) ${shapes}; mean s per validation over ${rounds} round(s)`);
  console.log(table(['baseline', 'largest only (s)', 'every size (s)', 'ratio'], rows));
}

main().catch(exitWithError);
