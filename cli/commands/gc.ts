// `evo gc`: remove training and data cache entries no run archive refers to, and say how much space that freed.
import type { CommandSpec } from '../spec';

function fmtBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  for (; n >= 1000 && i < units.length - 1; i++) n /= 1000;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export const gc: CommandSpec = {
  name: 'gc',
  summary: 'remove training results, prepared corpora, traced graphs and stored LLM replies no run archive refers to, and report the space freed',
  options: [],
  async run() {
    const { collectGarbage } = await import('../../ops/cache');
    const r = collectGarbage();
    const corpora = (n: number) => `${n} prepared ${n === 1 ? 'corpus' : 'corpora'}`;
    process.stdout.write(
      `removed ${r.results} training results, ${r.folders} training folders, ${corpora(r.corpora)} and ${r.graphs} traced ${r.graphs === 1 ? 'graph' : 'graphs'}, freed ${fmtBytes(r.bytes)}; kept ${r.kept} results of archived programs and ${corpora(r.keptCorpora)}\n`,
    );
    process.stdout.write(`LLM replies: removed ${r.replies} of runs no archive holds, kept ${r.keptReplies} of archived runs\n`);
  },
};
