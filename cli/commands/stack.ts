// `evo up` / `evo down`: the local stack (embedded Temporal server, control and device workers).
import { progress } from '../../core/output';
import type { CommandSpec } from '../spec';

export const up: CommandSpec = {
  name: 'up',
  summary: 'start the embedded Temporal server, a control worker and device workers (idempotent)',
  options: [
    { name: 'devices', type: 'string', value: 'auto|cpu,cpu|0,1,…', default: 'auto', description: 'device workers: auto is one per GPU, else one per CPU core; or a list of cpu and GPU indices' },
    { name: 'slots', type: 'string', value: 'N', default: '1', description: 'trainings each device worker runs at once on its device (small models leave a GPU idle between launches); one fewer after one runs out of GPU memory' },
  ],
  async run(o) {
    const { parseDevices, stackUp } = await import('../../ops/stack');
    const { parseSlots } = await import('../../workers/slots');
    const s = await stackUp({ devices: parseDevices(o.devices as string), slots: parseSlots(o.slots as string), log: progress });
    process.stdout.write(`Temporal  ${s.server.address}${s.server.uiUrl ? `   Web UI ${s.server.uiUrl}` : ''}\n`);
    for (const w of s.workers) process.stdout.write(`${w.name.padEnd(14)} pid ${w.pid}   log ${w.logFile}\n`);
  },
};

export const down: CommandSpec = {
  name: 'down',
  summary: 'stop the workers, then the embedded Temporal server',
  options: [],
  async run() {
    const { stackDown } = await import('../../ops/stack');
    await stackDown((l) => process.stdout.write(l + '\n'));
  },
};
