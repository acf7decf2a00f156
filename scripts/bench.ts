// `npm run bench`: training speed per size on each installed engine, measured in one run: ms/step
// and tokens/s; the achieved FLOP/s as a fraction of the device's own matmul rate, measured in the same
// run; and the torch engine against a hand-written PyTorch model of the same shape (engine overhead).
// Usage: node dist/scripts/bench.js [--profile smoke|full] [--steps N] [--framework coefficient_dynamics]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { assertFramework, baselineProgram } from '../core/program';
import { profileSettings } from '../evaluator/profiles';
import { prepareData } from '../evaluator/data/prepare';
import { trainOneSize } from '../evaluator/train';
import { initBackend, wasmCapacityProblem } from '../evaluator/backend';
import { storeGraph, traceProgram } from '../trace';
import { enginePackageDir, findTorchPython } from '../engine/python';
import { EvoError } from '../core/errors';
import { exitWithError, progress, table } from '../core/output';

interface TorchBench {
  device: string;
  torch: string;
  matmulFlops: number;
  sizes: { name: string; engineMs: number; plainMs: number; params: { nonEmbedding: number } }[];
}

/** FLOPs of one training step: 6 per parameter per token (head included), plus the T² attention products. */
function stepFlops(nonEmbedding: number, vocab: number, d: number, layers: number, batch: number, T: number): number {
  return 6 * batch * T * (nonEmbedding + vocab * d) + 12 * layers * batch * T * T * d;
}

/** tfjs's own float32 matmul rate on this backend (n×n×n, best of five). */
function tfjsMatmulFlops(n: number): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    tf.tidy(() => tf.matMul(a, b).dataSync());
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / best;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { profile: { type: 'string', default: 'smoke' }, steps: { type: 'string' }, framework: { type: 'string', default: 'coefficient_dynamics' } } });
  const settings = profileSettings(values.profile!);
  const steps = Number(values.steps ?? (settings.profile === 'full' ? 3 : 20));
  if (!Number.isInteger(steps) || steps < 1) throw new EvoError(`--steps must be a positive integer, got ${values.steps}`, 'USAGE');
  const program = baselineProgram(assertFramework(values.framework!));
  const data = await prepareData(settings.data);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-bench-'));
  try {
    const B = settings.training.batchSize;
    const T = settings.seqLen;
    const training = { ...settings.training, steps, evalEvery: steps, evalTokens: T, checkpointEvery: 0, warmupSteps: 1 };
    const model = (s: (typeof settings.sizes)[number]) => ({ vocabSize: data.vocabSize, seqLen: T, dModel: s.dModel, nLayers: s.nLayers, nHeads: s.nHeads, dropout: settings.dropout });

    // tfjs: the evaluator's own training loop, in this process (the baseline is trusted code).
    const backend = await initBackend();
    // Measured again after every size, the best kept (engine/evoscale_engine/bench.py does the same).
    let tfjsRate = tfjsMatmulFlops(512);
    const tfjs = new Map<string, { ms: number; nonEmbedding: number }>();
    for (const s of settings.sizes) {
      const tooBig = backend.name === 'wasm' ? wasmCapacityProblem(s.name, B, T, data.vocabSize) : null;
      if (tooBig) {
        progress(`tfjs-${backend.name}: ${s.name} skipped: ${tooBig}`);
        continue;
      }
      progress(`tfjs-${backend.name}: ${s.name}, ${steps} steps…`);
      const r = await trainOneSize({ block: program.block, model: model(s), training, seed: 1234, trainPath: data.trainPath, valPath: data.valPath, checkpointPath: path.join(work, `${s.name}.ckpt`) });
      tfjs.set(s.name, { ms: r.msPerStep, nonEmbedding: r.params.nonEmbedding });
      tfjsRate = Math.max(tfjsRate, tfjsMatmulFlops(512));
    }

    // torch, when an interpreter with torch is installed: the engine on traced graphs and a plain model.
    let torch: TorchBench | undefined;
    let python: string | undefined;
    try {
      python = (await findTorchPython()).python;
    } catch (err) {
      progress(`torch engine skipped: ${(err as Error).message}`);
    }
    if (python) {
      progress(`tracing ${program.framework} at ${settings.sizes.length} shapes…`);
      const graphs = await traceProgram(program.block, settings.sizes.map((s) => ({ batch: B, seqLen: T, dModel: s.dModel, nHeads: s.nHeads })), path.join(work, 'scratch'), { wallTimeoutMs: 600_000, memoryMb: 4096 });
      const spec = {
        steps,
        threads: 1,
        job: { model: model(settings.sizes[0]), training, seed: 1234, trainPath: data.trainPath, valPath: data.valPath, checkpointPath: path.join(work, 'unused.pt'), precision: 'fp32' },
        sizes: settings.sizes.map((s, i) => ({ ...s, graph: storeGraph(path.join(work, 'graphs'), graphs[i]) })),
      };
      fs.writeFileSync(path.join(work, 'bench.json'), JSON.stringify(spec));
      progress(`torch: ${settings.sizes.length} sizes × (engine, plain model), ${steps} steps each…`);
      const r = spawnSync(python, ['-m', 'evoscale_engine.bench', path.join(work, 'bench.json')], { env: { ...process.env, PYTHONPATH: enginePackageDir }, encoding: 'utf8' });
      if (r.status !== 0) throw new EvoError(`torch bench failed: ${r.stderr.trim().split('\n').pop()}`, 'BENCH');
      torch = JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchBench;
    }

    const rows: string[][] = [];
    for (const s of settings.sizes) {
      const t = tfjs.get(s.name);
      const e = torch?.sizes.find((x) => x.name === s.name);
      const nonEmbedding = t?.nonEmbedding ?? e?.params.nonEmbedding ?? 0;
      const flops = stepFlops(nonEmbedding, data.vocabSize, s.dModel, s.nLayers, B, T);
      const fmt = (ms: number, rate: number) => [ms.toFixed(1), Math.round((B * T * 1000) / ms).toLocaleString('en-US'), `${((flops / (ms / 1000) / rate) * 100).toFixed(1)}%`];
      rows.push(t ? [s.name, `tfjs-${backend.name}`, ...fmt(t.ms, tfjsRate), '—'] : [s.name, `tfjs-${backend.name}`, 'does not fit the wasm heap', '', '', '']);
      if (torch && e) rows.push([s.name, `torch-${torch.device}`, ...fmt(e.engineMs, torch.matmulFlops), (e.engineMs / e.plainMs).toFixed(2)]);
    }
    console.log(`${settings.profile} profile, ${program.framework} baseline, batch ${B} × ${T} tokens, ${steps} steps per measurement (ms/step excludes evaluation)`);
    console.log(`matmul rate: tfjs-${backend.name} ${(tfjsRate / 1e9).toFixed(1)} GFLOP/s (512³)${torch ? `; torch ${torch.torch} on ${torch.device} ${(torch.matmulFlops / 1e9).toFixed(1)} GFLOP/s` : ''}`);
    console.log(table(['size', 'engine', 'ms/step', 'tokens/s', 'of matmul rate', 'vs plain torch'], rows));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch(exitWithError);
