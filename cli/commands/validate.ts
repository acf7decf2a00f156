// `evo validate`: every check on one file; exits non-zero with the reasons when refused.
import { ProgramRejected } from '../../core/errors';
import { fmtInt, table } from '../../core/output';
import type { CommandSpec } from '../spec';
import { frameworkOption, jsonOption, profileOption } from './options';

export const validate: CommandSpec = {
  name: 'validate',
  summary: 'run every static and sandboxed check on one program file; exit 2 with reasons if refused',
  options: [
    frameworkOption,
    { name: 'program', type: 'string', value: '<file>', required: true, description: 'a whole framework file or just its EVOLVE-BLOCK' },
    profileOption,
    jsonOption,
  ],
  async run(o) {
    const { assertFramework } = await import('../../core/program');
    const { profileSettings } = await import('../../evaluator/profiles');
    const { checkProgram, readProgramFile } = await import('../program-file');
    const framework = assertFramework(o.framework as string);
    const settings = profileSettings(o.profile as string);
    const program = readProgramFile(framework, o.program as string);
    const report = await checkProgram(program, settings);
    if (o.json) {
      process.stdout.write(JSON.stringify({ framework, programHash: program.hash, ...report }, null, 2) + '\n');
    } else {
      const rows = report.checks.map((c) => [c.ok ? 'pass' : 'FAIL', c.name, c.detail]);
      process.stdout.write(`${framework} program ${program.hash}${report.blockParams !== undefined ? `   block parameters ${fmtInt(report.blockParams)}` : ''}\n\n`);
      process.stdout.write(table(['', 'check', 'detail'], rows) + '\n');
    }
    if (!report.ok) throw new ProgramRejected(`refused: ${report.reason}`, 'validation');
  },
};
