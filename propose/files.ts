// A provider that replays candidate blocks from a folder (in name order): for evaluating a
// hand-written list of variants through the full durable pipeline, and for scripted tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvoError } from '../core/errors';
import { programFromText } from '../core/program';
import type { MutationProposal, MutationRequest } from './provider';

export class FilesProvider {
  readonly name = 'files';
  constructor(private readonly dir: string) {}

  /** The `index`-th proposal of the run (0-based, counting every attempt). */
  async propose(req: MutationRequest, index: number): Promise<MutationProposal> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => /\.(ts|js|txt)$/.test(n)).sort();
    } catch {
      throw new EvoError(`mutation.dir ${this.dir} cannot be read`, 'BAD_MUTATION_DIR');
    }
    if (index >= names.length) throw new EvoError(`mutation.dir ${this.dir} has no candidate left (${names.length} files, proposal ${index + 1})`, 'CANDIDATES_EXHAUSTED');
    const file = path.join(this.dir, names[index]);
    // Only the block is taken; a file holding a whole framework file is cut to its block.
    const block = programFromText(req.framework, fs.readFileSync(file, 'utf8'), file).block;
    return { block, description: `from file ${names[index]}`, provider: this.name, variantIds: [] };
  }
}
