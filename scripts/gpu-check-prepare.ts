// `npm run gpu-check:prepare`: builds the small folder scripts/gpu-check.py needs on a GPU machine
// without Node.js: the engine package, the framework baseline's graph traced (in the sandbox) at every
// training shape of a profile (full by default; micro or smoke for a quick dry run on a CPU), the
// profile's token files, and the settings.
// Usage: node dist/scripts/gpu-check-prepare.js [--framework coefficient_dynamics] [--profile full] [--out gpu-check]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { assertFramework, baselineProgram } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { prepareData } from '../evaluator/data/prepare';
import { traceProgram } from '../trace';
import { exitWithError, progress } from '../core/output';
import { repoRoot } from '../core/paths';
import { enginePackageDir } from '../engine/python';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { framework: { type: 'string', default: 'coefficient_dynamics' }, profile: { type: 'string', default: 'full' }, out: { type: 'string', default: path.join(repoRoot, 'gpu-check') } },
  });
  const program = baselineProgram(assertFramework(values.framework!));
  const out = path.resolve(values.out!);
  const profile = profileSettings(values.profile!);
  const data = await prepareData(profile.data);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.join(out, 'graphs'), { recursive: true });
  fs.cpSync(path.join(enginePackageDir, 'evoscale_engine'), path.join(out, 'evoscale_engine'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
  fs.copyFileSync(data.trainPath, path.join(out, 'train.tok'));
  fs.copyFileSync(data.valPath, path.join(out, 'val.tok'));
  const shapes = profile.sizes.map((s) => ({ batch: profile.training.batchSize, seqLen: profile.seqLen, dModel: s.dModel, nHeads: s.nHeads }));
  progress(`tracing the ${program.framework} baseline at ${shapes.length} ${profile.profile}-profile shapes…`);
  const graphs = await traceProgram(program.block, shapes, path.join(out, '.scratch'), { wallTimeoutMs: 600_000, memoryMb: 4096 });
  fs.rmSync(path.join(out, '.scratch'), { recursive: true, force: true });
  const sizes = profile.sizes.map((s, i) => {
    const file = path.join('graphs', `${s.name}.json`);
    fs.writeFileSync(path.join(out, file), JSON.stringify(graphs[i]));
    return { ...s, graph: file };
  });
  const check = { profile: profile.profile, framework: program.framework, programHash: program.hash, vocabSize: data.vocabSize, seqLen: profile.seqLen, dropout: profile.dropout, training: profile.training, seed: profile.seeds[0], seedCount: profile.seeds.length, sizes };
  fs.writeFileSync(path.join(out, 'check.json'), JSON.stringify(check, null, 2));
  const bytes = fs.readdirSync(out, { recursive: true }).reduce((n, f) => n + (fs.statSync(path.join(out, String(f))).isFile() ? fs.statSync(path.join(out, String(f))).size : 0), 0);
  console.log(`${out}: ${(bytes / 1e6).toFixed(1)} MB (engine, ${sizes.length} graphs, token files, check.json); run: python3 scripts/gpu-check.py ${path.relative(repoRoot, out) || '.'}`);
}

main().catch(exitWithError);
