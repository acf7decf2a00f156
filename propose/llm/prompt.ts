// Builds the LLM's messages: the config's system message plus the framework file's header, and a
// user message with the parent, scores, the failure side-channel of recent attempts and inspirations.
import { frameworkTemplate, type Framework } from '../../core/program';
import { TEMPLATE_FIELDS, type PromptSettings, type TemplateField } from '../../config/schema';
import type { AttemptFeedback, AttemptOutcome, FitSummary, MutationRequest, ScoredProgram } from '../provider';

export interface PromptMessages {
  system: string;
  user: string;
}

/** Longest reason or description quoted back to the model; longer ones are cut with "…". */
const MAX_REASON_CHARS = 800;
const MAX_DESCRIPTION_CHARS = 300;

/** The comment at the top of frameworks/<framework>.ts, without its comment markers. */
export function frameworkHeader(framework: Framework): string {
  const m = /^\s*\/\*\*?([\s\S]*?)\*\//.exec(frameworkTemplate(framework));
  if (!m) return '';
  return m[1]
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
}

export function replyInstructions(format: PromptSettings['replyFormat']): string {
  const description =
    'Start with one or two sentences saying what you change and why it should make the loss fall faster ' +
    "with model size; they become the candidate's description.";
  if (format === 'block') {
    return [
      '## Reply format',
      description,
      'Then give the complete new EVOLVE-BLOCK in a single ```typescript fence: only the code that goes between ' +
        'the EVOLVE-BLOCK markers (no markers, imports, exports or header comment), defining ' +
        '`function attention(tf, ctx, x)` under exactly that name.',
    ].join('\n');
  }
  return [
    '## Reply format',
    description,
    "Then give one or more SEARCH/REPLACE edits to the parent's EVOLVE-BLOCK, each exactly in this form:",
    '',
    '<<<<<<< SEARCH',
    'lines copied exactly from the parent block above, with their indentation',
    '=======',
    'the lines that replace them',
    '>>>>>>> REPLACE',
    '',
    'Rules:',
    '- Each SEARCH must match exactly one place in the parent block; add a neighbouring line when a line repeats.',
    '- Edits are applied in order, each to the result of the one before.',
    '- Only code between the EVOLVE-BLOCK markers can change: never quote the markers, the imports, the header comment or `export { attention };`.',
    '- Keep `function attention(tf, ctx, x)` as the entry point, under that name.',
    '- To rewrite most of the block, reply instead with the whole block in one ```typescript fence.',
  ].join('\n');
}

function num(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x);
}

function cut(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** "fitness 0.1234 (loss = 5.1 − 0.1234·ln N, R² 0.98, slope s.e. 0.01)". */
export function describeScore(fitness: number | null | undefined, fit?: FitSummary | null): string {
  if (fitness === null || fitness === undefined) return 'not scored (it did not train to a fitness)';
  let text = `fitness ${num(fitness)} (higher is better)`;
  if (fit) {
    const sign = fit.slope < 0 ? '−' : '+';
    const stdErr = fit.slopeStdErr === null ? '' : `, slope standard error ${num(fit.slopeStdErr)}`;
    text += `; fit loss = ${num(fit.intercept)} ${sign} ${num(Math.abs(fit.slope))}·ln N, R² ${num(fit.r2)}${stdErr}`;
  }
  return text;
}

function fence(block: string): string {
  return '```typescript\n' + block.replace(/\s+$/, '') + '\n```';
}

const OUTCOME_WORDS: Record<AttemptOutcome, string> = {
  'reply-refused': 'reply refused',
  'validation-failed': 'refused by validation',
  rejected: 'trained, not better than the best',
  accepted: 'trained and accepted',
  'llm-error': 'LLM call failed',
};

function renderAttempts(attempts: AttemptFeedback[], window: number): string {
  const recent = window > 0 ? attempts.slice(-window) : [];
  if (recent.length === 0) return 'None yet.';
  return recent
    .map((a) => {
      const head = `- Iteration ${a.iteration}, attempt ${a.attempt}: ${OUTCOME_WORDS[a.outcome]}` + (a.fitness !== undefined && a.fitness !== null ? ` (fitness ${num(a.fitness)})` : '');
      const lines = [head];
      if (a.description) lines.push(`  Change: ${cut(a.description, MAX_DESCRIPTION_CHARS)}`);
      if (a.error) lines.push(`  Reason: ${cut(a.error, MAX_REASON_CHARS)}`);
      return lines.join('\n');
    })
    .join('\n');
}

function same(a: string, b: string): boolean {
  return a.replace(/\s+/g, ' ').trim() === b.replace(/\s+/g, ' ').trim();
}

function renderProgram(title: string, p: ScoredProgram): string {
  const where = p.iteration !== undefined ? ` (iteration ${p.iteration})` : '';
  const lines = [`### ${title}${where}: ${describeScore(p.fitness, p.fit)}`];
  if (p.description) lines.push(cut(p.description, MAX_DESCRIPTION_CHARS));
  lines.push(fence(p.block));
  return lines.join('\n');
}

function renderBest(req: MutationRequest): string {
  const best = req.best;
  if (!best) return 'No program has been scored yet.';
  if (same(best.block, req.parentBlock)) return `The parent is the best program so far: ${describeScore(best.fitness, best.fit)}.`;
  return renderProgram('Best so far', best);
}

function renderInspirations(req: MutationRequest, count: number): string {
  const shown = [req.parentBlock, ...(req.best ? [req.best.block] : [])];
  const picks: ScoredProgram[] = [];
  for (const p of req.inspirations ?? []) {
    if (picks.length >= count) break;
    if (shown.some((b) => same(b, p.block))) continue;
    shown.push(p.block);
    picks.push(p);
  }
  if (picks.length === 0) return 'None beyond the programs above.';
  return picks.map((p, i) => renderProgram(`Inspiration ${i + 1}`, p)).join('\n\n');
}

function renderParentMetrics(req: MutationRequest): string {
  const where = req.parent?.iteration !== undefined ? ` (from iteration ${req.parent.iteration})` : '';
  const score = req.parent ? describeScore(req.parent.fitness, req.parent.fit) : 'not scored yet';
  const what = req.parent?.description ? `\nParent's change: ${cut(req.parent.description, MAX_DESCRIPTION_CHARS)}` : '';
  return `Parent${where}: ${score}.${what}`;
}

/** The system and user messages for one mutation request. */
export function buildPrompt(req: MutationRequest, prompt: PromptSettings): PromptMessages {
  const header = frameworkHeader(req.framework);
  const system = `${prompt.systemMessage.trim()}\n\n## The ${req.framework} framework (header of frameworks/${req.framework}.ts)\n${header}`;
  const values: Record<TemplateField, () => string> = {
    framework: () => req.framework,
    iteration: () => String(req.iteration),
    parent_block: () => req.parentBlock.replace(/\s+$/, ''),
    parent_metrics: () => renderParentMetrics(req),
    best: () => renderBest(req),
    attempts: () => renderAttempts(req.attempts ?? [], prompt.historyWindow),
    inspirations: () => renderInspirations(req, prompt.inspirations),
    reply_instructions: () => replyInstructions(prompt.replyFormat),
  };
  // One pass, so text inserted for one template field is never scanned for another.
  const user = prompt.userTemplate.replace(/\{([a-z_]+)\}/g, (whole, name: string) =>
    (TEMPLATE_FIELDS as readonly string[]).includes(name) ? values[name as TemplateField]() : whole,
  );
  return { system, user: user.trim() + '\n' };
}
