// Validation refuses broken and hostile blocks with precise one-line reasons and passes the baselines.
// The hostile fixture corpus (test/fixtures/hostile/) runs in test/hostile.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateProgram, staticFindings, type ValidationReport, type ValidationSpec } from '../validate';
import { DYNAMIC_CHECKS } from '../validate/report';
import { baselineProgram, FRAMEWORKS, makeProgram, type Program } from '../core/program';
import { CATALOGUE } from '../propose/offline/catalogue';
import { validationSpec } from '../config/run-settings';
import { profileSettings } from '../evaluator/profiles';

const SPEC: ValidationSpec = { dModel: 32, nHeads: 4, seqLen: 16, batch: 2, timeMultiple: 4, wallTimeoutMs: 30_000 };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'evoscale-validate-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

function validate(block: string, spec: ValidationSpec = SPEC): Promise<ValidationReport> {
  return validateProgram(makeProgram('coefficient_dynamics', block), spec, scratch);
}

function failedCheck(report: ValidationReport): string | undefined {
  return report.checks.find((c) => !c.ok)?.name;
}

/** Single-head causal softmax attention; `mask: false` drops the causal mask, `out` rewrites the result `y`. */
function softmaxBlock({ mask = true, out = 'y', extra = '' }: { mask?: boolean; out?: string; extra?: string } = {}): string {
  return `function attention(tf, ctx, x) {
  const [B, T, D] = x.shape;
  const W = ctx.param('Wqkv', [D, 3 * D], 'glorot');
  const [q, k, v] = tf.split(tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), W), [B, T, 3 * D]), 3, 2);
  const scores = tf.div(tf.matMul(q, k, false, true), Math.sqrt(D));
  const masked = ${mask ? 'tf.add(scores, tf.mul(tf.sub(1, ctx.causalMask), -1e9))' : 'scores'};
  const y = tf.matMul(tf.softmax(masked, -1), v);${extra}
  return ${out};
}
`;
}

test('every framework baseline passes every check', async () => {
  for (const framework of FRAMEWORKS) {
    const report = await validateProgram(baselineProgram(framework), SPEC, scratch);
    assert.equal(report.ok, true, `${framework}: ${report.reason}`);
    assert.equal(report.reason, undefined);
    assert.deepEqual(report.checks.map((c) => c.name), ['syntax', 'static', ...DYNAMIC_CHECKS]);
    assert.ok(report.checks.every((c) => c.ok && c.detail.length > 0));
    assert.ok((report.blockParams ?? 0) > 0);
    assert.ok((report.msPerStep ?? 0) > 0 && (report.baselineMsPerStep ?? 0) > 0);
    if (framework === 'coefficient_dynamics') assert.equal(report.blockParams, SPEC.dModel * 3 * SPEC.dModel);
  }
});

test('a single-head softmax block passes', async () => {
  const report = await validate(softmaxBlock());
  assert.equal(report.ok, true, report.reason);
});

test('softmax without the causal mask is refused by causality', async () => {
  const report = await validate(softmaxBlock({ mask: false }));
  assert.equal(report.ok, false);
  assert.equal(failedCheck(report), 'causality');
  assert.match(report.reason ?? '', /^causality: output at position \d+ changed by [\d.e+-]+ when tokens after position \d+ were perturbed \(the block reads the future\)$/);
});

test('a wrong output shape is refused with both shapes in the message', async () => {
  const report = await validate(softmaxBlock({ out: 'tf.concat([y, y], 2)' }));
  assert.equal(failedCheck(report), 'shape');
  assert.equal(report.reason, 'shape: expected output (2, 16, 32), got (2, 16, 64)');
});

test("a run validates at the largest size's shape and at every other training size's", () => {
  const spec = validationSpec(profileSettings('smoke'));
  assert.deepEqual([spec.dModel, spec.nHeads, spec.seqLen], [64, 4, 16]);
  assert.deepEqual(spec.otherSizes, [
    { name: 'd16-L1-H1', dModel: 16, nHeads: 1 },
    { name: 'd24-L1-H2', dModel: 24, nHeads: 2 },
    { name: 'd40-L1-H2', dModel: 40, nHeads: 2 },
  ]);
});

test('a block that leaks the future only below the largest width is refused at the narrower size, which the reason names', async () => {
  const leaky = softmaxBlock({
    extra: '\n  const next = tf.concat([tf.slice(x, [0, 1, 0], [B, T - 1, D]), tf.zeros([B, 1, D])], 1);',
    out: 'D < 32 ? tf.add(y, next) : y',
  });
  const largestOnly = await validate(leaky);
  assert.equal(largestOnly.ok, true, `at the largest shape alone the leak is invisible: ${largestOnly.reason}`);
  const report = await validate(leaky, { ...SPEC, otherSizes: [{ name: 'd16-L1-H2', dModel: 16, nHeads: 2 }] });
  assert.equal(report.ok, false);
  assert.equal(failedCheck(report), 'causality');
  assert.match(report.reason ?? '', /^causality at d16-L1-H2 \(d_model 16, 2 heads\): output at position \d+ changed by .* \(the block reads the future\)$/);
});

test("the baseline passes at every training size; each shape is checked once and the details name them", async () => {
  const sizes = [
    { name: 'd32-L2-H4', dModel: 32, nHeads: 4 }, // the largest shape again: nothing more to check
    { name: 'd8-L1-H1', dModel: 8, nHeads: 1 },
    { name: 'd24-L1-H2', dModel: 24, nHeads: 2 },
    { name: 'd8-L2-H1', dModel: 8, nHeads: 1 },
  ];
  const report = await validateProgram(baselineProgram('coefficient_dynamics'), { ...SPEC, otherSizes: sizes }, scratch);
  assert.equal(report.ok, true, report.reason);
  assert.deepEqual(report.checks.map((c) => c.name), ['syntax', 'static', ...DYNAMIC_CHECKS]);
  const causality = report.checks.find((c) => c.name === 'causality')?.detail ?? '';
  assert.match(causality, /also at the other training sizes' \(D, H\) = \(8, 1\), \(24, 2\), one batch row there$/);
  assert.ok(!/also at/.test(report.checks.find((c) => c.name === 'time')?.detail ?? ''), 'the counted work is measured at the largest shape only');
});

test('on a run that trains on torch, validation also traces the block: a kernel the engine lacks or a read of a traced value is refused by trace with the training\'s reason, at the size where it happens', async () => {
  const torch: ValidationSpec = { ...SPEC, traceForTorch: true };
  const baseline = await validateProgram(baselineProgram('coefficient_dynamics'), torch, scratch);
  assert.equal(baseline.ok, true, baseline.reason);
  assert.deepEqual(baseline.checks.map((c) => c.name), ['syntax', 'static', ...DYNAMIC_CHECKS, 'trace']);

  const sine = softmaxBlock({ out: 'tf.add(y, tf.mul(tf.sin(y), 0.1))' });
  assert.equal((await validate(sine)).ok, true, 'tfjs takes it: without the torch engine nothing changes');
  const refused = await validate(sine, torch);
  assert.equal(failedCheck(refused), 'trace');
  assert.equal(refused.reason, 'trace: the block uses kernel Sin, which the torch engine does not implement');

  const reads = softmaxBlock({ extra: '\n  const peak = tf.max(tf.abs(v)).dataSync()[0];', out: 'peak > 1e30 ? tf.zerosLike(y) : y' });
  const read = await validate(reads, torch);
  assert.equal(failedCheck(read), 'trace');
  assert.equal(read.reason, 'trace: the block reads tensor values with dataSync(), so its graph would depend on the data');

  const narrowOnly = softmaxBlock({ out: 'D < 32 ? tf.add(y, tf.mul(tf.sin(y), 0.1)) : y' });
  const narrow = await validate(narrowOnly, { ...torch, otherSizes: [{ name: 'd16-L1-H2', dModel: 16, nHeads: 2 }] });
  assert.equal(failedCheck(narrow), 'trace');
  assert.equal(narrow.reason, 'trace at d16-L1-H2 (d_model 16, 2 heads): the block uses kernel Sin, which the torch engine does not implement');
});

test('a syntax error is refused before anything runs', async () => {
  const report = await validate('function attention(tf, ctx, x) {\n  return tf.mul(x, 2;\n}\n');
  assert.equal(failedCheck(report), 'syntax');
  assert.match(report.reason ?? '', /^syntax error in the EVOLVE-BLOCK at block line 2/);
  assert.deepEqual(report.checks.map((c) => c.name), ['syntax']);
});

test('a block emitting NaN is refused by finite', async () => {
  const report = await validate(softmaxBlock({ out: 'tf.sqrt(tf.sub(y, 10))' }));
  assert.equal(failedCheck(report), 'finite');
  assert.match(report.reason ?? '', /^finite: output has \d+ non-finite values \(NaN or Inf\) for random inputs$/);
});

test('a block mixing batch rows is refused by batch', async () => {
  const report = await validate(softmaxBlock({ out: 'tf.add(y, tf.mean(y, 0, true))' }));
  assert.equal(failedCheck(report), 'batch');
  assert.match(report.reason ?? '', /^batch: output of batch row 1 changed by [\d.e+-]+ when only batch row 0 was perturbed \(the block mixes batch rows\)$/);
});

test('a parameter that gets no gradient is refused by gradient', async () => {
  const report = await validate(softmaxBlock({ extra: "\n  const gate = ctx.param('gate', [D], 'ones');" }));
  assert.equal(failedCheck(report), 'gradient');
  assert.equal(report.reason, 'gradient: parameter "gate" gets an all-zero gradient (it does not affect the output)');
});

test('a block that never returns is stopped by the wall clock', async () => {
  const report = await validate('function attention(tf, ctx, x) {\n  for (;;) {}\n}\n', { ...SPEC, wallTimeoutMs: 4000 });
  assert.equal(failedCheck(report), 'timeout');
  assert.equal(report.reason, 'timeout: validation exceeded the 4 s wall-clock limit (the block is too slow or never returns)');
});

test('a block that never returns is killed when one call runs past its budget, long before the wall clock', async () => {
  // The budget is timeMultiple × the baseline's step, at least 20 s; the wall clock (120 s) is only the backstop.
  const report = await validate('function attention(tf, ctx, x) {\n  for (;;) {}\n}\n', { ...SPEC, wallTimeoutMs: 120_000 });
  assert.equal(report.ok, false);
  assert.equal(failedCheck(report), 'time');
  assert.match(
    report.reason ?? '',
    /^time: a call of the block ran past its 20 s budget \(4× the baseline's [\d.]+ ms forward\+backward, at least 20 s\) and was killed \(the block is too slow or never returns\)$/,
  );
});

test('a block doing many times the baseline\'s work is refused by time, with the counts', async () => {
  // T² matmuls of a T×T matrix per call: many times the baseline's kernel calls and FLOPs.
  const block = `function attention(tf, ctx, x) {
  const [B, T, D] = x.shape;
  const W = ctx.param('W', [D, D], 'glorot');
  const v = tf.reshape(tf.matMul(tf.reshape(x, [B * T, D]), W), [B, T, D]);
  const a = tf.div(ctx.causalMask, tf.sum(ctx.causalMask, -1, true));
  let m = a;
  for (let i = 0; i < T * T; i++) m = tf.matMul(m, a);
  return tf.matMul(tf.broadcastTo(m, [B, T, T]), v);
}
`;
  const report = await validate(block);
  assert.equal(failedCheck(report), 'time');
  assert.match(report.reason ?? '', /^time: one forward\+backward at \(B, T, D\) = \(2, 16, 32\) counts [\d.]+× the baseline's work \(limit 4×\): \d+ kernel calls and [\d.e+-]+ MFLOP against \d+ and [\d.e+-]+ MFLOP$/);
});

test('valid programs pass while two busy processes load every core', { timeout: 15 * 60_000 }, async () => {
  // The time check counts work instead of timing it, and a call's budget has a floor of seconds: load
  // from other processes must not refuse a valid block. No wall times are asserted.
  const ids = ['mm-forgetting-semiseparable', 'ttr-ridge', 'cd-differential', 'mm-hyena'];
  const programs: [string, Program][] = [
    ...FRAMEWORKS.map((framework): [string, Program] => [`baseline ${framework}`, baselineProgram(framework)]),
    ...ids.map((id): [string, Program] => {
      const variant = CATALOGUE.find((v) => v.id === id);
      assert.ok(variant, `no catalogue variant ${id}`);
      return [id, makeProgram(variant.framework, variant.block)];
    }),
  ];
  const busy: ChildProcess[] = [];
  const stopBusy = (): void => {
    for (const p of busy) p.kill('SIGKILL');
  };
  process.once('exit', stopBusy); // should the test process die first
  try {
    for (let i = 0; i < 2; i++) busy.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
    for (const [name, program] of programs) {
      const report = await validateProgram(program, { ...SPEC, wallTimeoutMs: 300_000 }, scratch);
      assert.equal(report.ok, true, `${name}: ${report.reason}`);
      assert.deepEqual(report.checks.map((c) => c.name), ['syntax', 'static', ...DYNAMIC_CHECKS]);
    }
  } finally {
    stopBusy();
    process.off('exit', stopBusy);
  }
});

test('counted work: a matmul counts 2·B·M·N·K FLOPs, a reduction its input, an elementwise op its output', async () => {
  const tf = await import('@tensorflow/tfjs');
  const { countWork } = await import('../validate/cost');
  const a = tf.ones([2, 3, 4]);
  const b = tf.ones([2, 4, 5]);
  const mm = countWork(() => void tf.matMul(a, b).dispose());
  assert.deepEqual([mm.calls, mm.flops, mm.bytes], [1, 2 * 2 * 3 * 5 * 4, 2 * 3 * 5 * 4]);
  const sum = countWork(() => void tf.sum(a, -1).dispose());
  assert.deepEqual([sum.calls, sum.flops], [1, 24]);
  const add = countWork(() => void tf.add(a, a).dispose());
  assert.deepEqual([add.calls, add.flops], [1, 24]);
  tf.dispose([a, b]);
});

test('static checks name the construct and the block line, and ignore strings and comments', () => {
  const findings = staticFindings('// process, require and globalThis in a comment\nconst note = "process the constructor";\nfunction attention(tf, ctx, x) {\n  return tf.mul(x, process.env.N);\n}\n');
  assert.deepEqual(findings.map((f) => [f.line, f.construct]), [[4, '`process`']]);
  assert.deepEqual(staticFindings(baselineProgram('coefficient_dynamics').block), []);
});
