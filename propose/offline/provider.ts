// The offline mutation provider: no LLM, deterministic draws from the published-variant catalogue.
// It keeps evolution usable without an API key and is the research control for LLM-guided search.
import { createHash } from 'node:crypto';
import { EvoError } from '../../core/errors';
import { baselineBlock, type Framework } from '../../core/program';
import { KNOBS, variantsFor, type Knob } from './catalogue';
import { modifiersFor } from './modifiers';
import type { MutationProposal, MutationProvider, MutationRequest } from '../provider';

export type { MutationProposal, MutationProvider, MutationRequest } from '../provider';

/** A block the offline provider can propose as is: a catalogue variant or a composition. */
export interface Candidate {
  /** Stable key for ordering: the variant ids joined by '+'. */
  key: string;
  block: string;
  variantIds: string[];
  description: string;
  knobs: Knob[];
}

/** Blocks that differ only in whitespace are the same proposal. */
function normalise(block: string): string {
  return block.replace(/\s+/g, ' ').trim();
}

/** A uniform number in [0, 1) from the given parts: reproducible, no hidden state. */
function unit(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join(':')).digest().readUInt32LE(0) / 2 ** 32;
}

const candidateCache = new Map<Framework, Candidate[]>();

/**
 * Every block the provider proposes before it starts perturbing: the framework's catalogue
 * variants, then compositions — a variant (or the baseline) with one score prior and/or the
 * output gate, wherever the modifier applies mechanically. Duplicates by text are dropped.
 */
export function offlineCandidates(framework: Framework): Candidate[] {
  const cached = candidateCache.get(framework);
  if (cached) return cached;
  const variants = variantsFor(framework);
  const byId = new Map(variants.map((v) => [v.id, v]));
  const modifiers = modifiersFor(framework);
  const modifierIds = new Set(modifiers.map((m) => m.id));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  const add = (c: Candidate) => {
    const key = normalise(c.block);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(c);
  };

  for (const v of variants) {
    add({ key: v.id, block: v.block, variantIds: [v.id], description: `${v.id}: ${v.title} (${v.reference}). ${v.idea}`, knobs: [...v.knobs] });
  }
  const bases = [
    { ids: [] as string[], block: baselineBlock(framework), knobs: [] as Knob[] },
    ...variants.filter((v) => !modifierIds.has(v.id)).map((v) => ({ ids: [v.id], block: v.block, knobs: [...v.knobs] })),
  ];
  const priors = [null, ...modifiers.filter((m) => m.kind === 'score-prior')];
  const gates = [null, ...modifiers.filter((m) => m.kind === 'output-gate')];
  for (const base of bases) {
    for (const prior of priors) {
      for (const gate of gates) {
        if (!prior && !gate) continue;
        let block: string | null = base.block;
        for (const m of [prior, gate]) if (m && block !== null) block = m.apply(block);
        if (block === null) continue;
        const applied = [prior, gate].filter((m) => m !== null);
        const ids = [...base.ids, ...applied.map((m) => m.id)];
        const titles = ids.map((id) => byId.get(id)?.title ?? id);
        add({
          key: ids.join('+'),
          block,
          variantIds: ids,
          description: `composition ${base.ids.length ? '' : 'of the baseline with '}${ids.join(' + ')}: ${titles.join('; ')}`,
          knobs: [...base.knobs, ...applied.flatMap((m) => m.knobs)],
        });
      }
    }
  }
  candidateCache.set(framework, out);
  return out;
}

function knobPattern(name: string): RegExp {
  return new RegExp(`(\\bconst ${name} = )(-?\\d+(?:\\.\\d+)?(?:e[-+]?\\d+)?)(;)`);
}

/** The catalogue knobs a block declares, whoever wrote it. */
export function knobsIn(block: string): Knob[] {
  return Object.values(KNOBS).filter((k) => knobPattern(k.name).test(block));
}

function formatValue(knob: Knob, value: number): string {
  return knob.integer ? String(Math.round(value)) : String(Number(value.toPrecision(3)));
}

/**
 * A new value for one knob: the current one times 2^u with |u| in [0.1, 1], clamped to the knob's
 * range (integers round and move by at least 1). Null when the draw lands on the current value.
 */
function perturbKnob(block: string, knob: Knob, r: number): { block: string; from: string; to: string } | null {
  const m = knobPattern(knob.name).exec(block);
  if (!m) return null;
  const current = Number(m[2]);
  const u = (r < 0.5 ? -1 : 1) * (0.1 + 0.9 * ((r * 2) % 1));
  let value = Math.min(knob.max, Math.max(knob.min, current * 2 ** u));
  if (knob.integer && Math.round(value) === current) value = Math.min(knob.max, Math.max(knob.min, current + (u < 0 ? -1 : 1)));
  const to = formatValue(knob, value);
  if (Number(to) === current) return null;
  return { block: block.slice(0, m.index) + m[1] + to + m[3] + block.slice(m.index + m[0].length), from: m[2], to };
}

const PERTURB_ATTEMPTS = 200;

/**
 * Draws catalogue variants in a seed-dependent order, starting at the iteration's position and
 * skipping any block already in the history (or the parent itself); then compositions; once all
 * are used up, perturbs one numeric knob — of the parent when it declares catalogue knobs (a local
 * search around the selected program), otherwise of a drawn catalogue candidate.
 */
export class OfflineCatalogueProvider implements MutationProvider {
  readonly name = 'offline-catalogue';

  async propose(req: MutationRequest): Promise<MutationProposal> {
    const seen = new Set([req.parentBlock, ...req.history.map((h) => h.block)].map(normalise));
    const all = offlineCandidates(req.framework);
    const order = (list: Candidate[]) =>
      [...list].sort((a, b) => unit(req.seed, req.framework, a.key) - unit(req.seed, req.framework, b.key));
    const plainCount = variantsFor(req.framework).length;
    const ordered = [...order(all.slice(0, plainCount)), ...order(all.slice(plainCount))];

    const start = (((req.iteration - 1) % ordered.length) + ordered.length) % ordered.length;
    for (let n = 0; n < ordered.length; n++) {
      const c = ordered[(start + n) % ordered.length];
      if (!seen.has(normalise(c.block))) {
        return { block: c.block, description: c.description, provider: this.name, variantIds: c.variantIds };
      }
    }
    return this.perturb(req, seen, all);
  }

  private perturb(req: MutationRequest, seen: Set<string>, all: Candidate[]): MutationProposal {
    const parentKnobs = knobsIn(req.parentBlock);
    const parentIds = variantsFor(req.framework)
      .filter((v) => v.knobs.some((k) => parentKnobs.some((p) => p.name === k.name)))
      .map((v) => v.id);
    const withKnobs = all.filter((c) => c.knobs.length > 0);
    for (let attempt = 0; attempt < PERTURB_ATTEMPTS; attempt++) {
      const draw = (what: string) => unit(req.seed, req.framework, req.iteration, attempt, what);
      // The parent first; drawn candidates once the parent's neighbourhood keeps repeating.
      const fromParent = parentKnobs.length > 0 && attempt < PERTURB_ATTEMPTS / 2;
      const base = fromParent
        ? { block: req.parentBlock, knobs: parentKnobs, variantIds: parentIds, description: 'the parent' }
        : withKnobs[Math.floor(draw('base') * withKnobs.length)];
      if (!base) break;
      const knob = base.knobs[Math.floor(draw('knob') * base.knobs.length)];
      const p = perturbKnob(base.block, knob, draw('value'));
      if (!p || seen.has(normalise(p.block))) continue;
      return {
        block: p.block,
        description: `perturbed ${knob.name} ${p.from} → ${p.to} in ${base.description}`,
        provider: this.name,
        variantIds: base.variantIds,
      };
    }
    throw new EvoError(`offline catalogue: no unseen ${req.framework} block left to propose after ${PERTURB_ATTEMPTS} perturbation draws`, 'CATALOGUE_EXHAUSTED');
  }
}
