// Turns an LLM reply into a candidate EVOLVE-BLOCK: SEARCH/REPLACE diffs applied to the parent's
// block, or a whole block from a code fence. Anything else is refused with a reason the next prompt quotes.
import * as ts from 'typescript';
import { EvoError, ProgramRejected } from '../../core/errors';
import { BLOCK_END, BLOCK_START, extractBlock, frameworkTemplate, transpileBlock, type Framework } from '../../core/program';
import type { LlmUsage } from '../provider';

export type RefusalKind =
  | 'empty'
  | 'no-code'
  | 'malformed-diff'
  | 'search-not-found'
  | 'ambiguous-search'
  | 'outside-block'
  | 'entry-point'
  | 'syntax'
  | 'unchanged';

/**
 * A reply that yields no usable block. The message is the reason, worded for the model's next
 * attempt; `usage` holds the calls that produced the reply, so their cost is still counted.
 */
export class ReplyRefused extends EvoError {
  constructor(
    message: string,
    readonly kind: RefusalKind,
    readonly usage?: LlmUsage,
    /** The reply's text (cut to MAX_KEPT_REPLY characters), for the archive. */
    readonly reply?: string,
  ) {
    super(message, 'REPLY_REFUSED', 'candidate');
    this.name = 'ReplyRefused';
  }

  withContext(usage: LlmUsage, reply: string): ReplyRefused {
    return new ReplyRefused(this.message, this.kind, usage, reply.length > MAX_KEPT_REPLY ? reply.slice(0, MAX_KEPT_REPLY) : reply);
  }
}

const MAX_KEPT_REPLY = 20_000;

export interface ParsedReply {
  block: string;
  /** The reply's prose before its code, cut to one short paragraph. */
  description: string;
  form: 'diff' | 'block';
  /** SEARCH/REPLACE edits applied (0 for a whole block). */
  edits: number;
}

export interface ParseOptions {
  /** The reply stopped at this many tokens (finish_reason "length"): said in any refusal. */
  truncatedAt?: number;
}

const SEARCH_RE = /^\s*<{5,}\s*SEARCH\s*$/;
const DIVIDER_RE = /^\s*={5,}\s*$/;
const REPLACE_RE = /^\s*>{5,}\s*REPLACE\s*$/;
const FENCE_RE = /(?:^|\n)[ \t]*(`{3,}|~{3,})[^\n]*\n([\s\S]*?)\n[ \t]*\1[ \t]*(?=\n|$)/g;
const MAX_DESCRIPTION = 300;

export interface SearchReplaceEdit {
  search: string;
  replace: string;
  /** 1-based line of the SEARCH marker in the reply. */
  line: number;
}

function quote(line: string): string {
  const t = line.trim();
  return JSON.stringify(t.length > 100 ? `${t.slice(0, 97)}...` : t);
}

function firstNonBlank(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? '';
}

function normalised(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The framework file outside its EVOLVE-BLOCK: the text no reply may change. */
function fixedPart(framework: Framework): string {
  const template = frameworkTemplate(framework);
  const block = extractBlock(template);
  return template.replace(block, '\n');
}

function parseEdits(lines: string[]): SearchReplaceEdit[] {
  const edits: SearchReplaceEdit[] = [];
  let state: 'out' | 'search' | 'replace' = 'out';
  let search: string[] = [];
  let replace: string[] = [];
  let start = 0;
  lines.forEach((line, i) => {
    if (state === 'out') {
      if (SEARCH_RE.test(line)) {
        state = 'search';
        search = [];
        start = i + 1;
      } else if (REPLACE_RE.test(line)) {
        throw new ReplyRefused(`reply line ${i + 1} has ">>>>>>> REPLACE" without a "<<<<<<< SEARCH" before it`, 'malformed-diff');
      }
    } else if (state === 'search') {
      if (DIVIDER_RE.test(line)) {
        state = 'replace';
        replace = [];
      } else if (SEARCH_RE.test(line) || REPLACE_RE.test(line)) {
        throw new ReplyRefused(`edit ${edits.length + 1} (reply line ${start}) has no "=======" between its SEARCH and REPLACE parts`, 'malformed-diff');
      } else search.push(line);
    } else if (REPLACE_RE.test(line)) {
      edits.push({ search: search.join('\n'), replace: replace.join('\n'), line: start });
      state = 'out';
    } else if (SEARCH_RE.test(line)) {
      throw new ReplyRefused(`edit ${edits.length + 1} (reply line ${start}) is not closed by ">>>>>>> REPLACE" before the next SEARCH`, 'malformed-diff');
    } else replace.push(line);
  });
  if (state !== 'out') {
    throw new ReplyRefused(`edit ${edits.length + 1} (reply line ${start}) is not closed by ">>>>>>> REPLACE"`, 'malformed-diff');
  }
  return edits;
}

/** Start/end offsets of every place `search` occurs: exactly, else line by line ignoring indentation. */
function locate(text: string, search: string): { start: number; end: number }[] {
  const exact: { start: number; end: number }[] = [];
  for (let at = text.indexOf(search); at >= 0; at = text.indexOf(search, at + 1)) exact.push({ start: at, end: at + search.length });
  if (exact.length > 0) return exact;

  const want = search.split('\n').map((l) => l.trim());
  while (want.length && want[0] === '') want.shift();
  while (want.length && want[want.length - 1] === '') want.pop();
  if (want.length === 0) return [];
  const lines = text.split('\n');
  const offsets: number[] = [];
  lines.reduce((at, l) => (offsets.push(at), at + l.length + 1), 0);
  const found: { start: number; end: number }[] = [];
  for (let i = 0; i + want.length <= lines.length; i++) {
    if (want.every((w, k) => lines[i + k].trim() === w)) {
      const last = i + want.length - 1;
      found.push({ start: offsets[i], end: offsets[last] + lines[last].length });
    }
  }
  return found;
}

/** Applies SEARCH/REPLACE edits in order to the parent's block (never to the fixed part). */
export function applyEdits(parentBlock: string, edits: SearchReplaceEdit[], framework: Framework): string {
  const fixed = fixedPart(framework);
  let block = parentBlock;
  edits.forEach((e, i) => {
    const n = i + 1;
    if (e.search.trim() === '') {
      throw new ReplyRefused(`edit ${n} has an empty SEARCH part; quote the lines of the block it replaces`, 'malformed-diff');
    }
    if ([e.search, e.replace].some((t) => t.includes(BLOCK_START) || t.includes(BLOCK_END))) {
      throw new ReplyRefused(`edit ${n} touches an EVOLVE-BLOCK marker; only the code between the markers can be edited`, 'outside-block');
    }
    const places = locate(block, e.search);
    if (places.length === 0) {
      if (locate(fixed, e.search).length > 0) {
        throw new ReplyRefused(
          `edit ${n} is outside the EVOLVE-BLOCK: its SEARCH text (first line ${quote(firstNonBlank(e.search))}) is in the fixed part of frameworks/${framework}.ts, which cannot be changed`,
          'outside-block',
        );
      }
      const earlier = n > 1 ? ' (edits apply in order: an earlier edit may have changed these lines)' : '';
      throw new ReplyRefused(
        `the SEARCH text of edit ${n} does not match the parent block: its first line ${quote(firstNonBlank(e.search))} is not found as written${earlier}; copy the lines exactly from the parent block`,
        'search-not-found',
      );
    }
    if (places.length > 1) {
      throw new ReplyRefused(
        `the SEARCH text of edit ${n} (first line ${quote(firstNonBlank(e.search))}) matches ${places.length} places in the block; include a neighbouring line so it matches one`,
        'ambiguous-search',
      );
    }
    block = block.slice(0, places[0].start) + e.replace + block.slice(places[0].end);
  });
  return block;
}

/** A whole block from fenced (or unfenced) code, cut to its markers; text outside them must be the framework's own. */
function blockFromCode(code: string, framework: Framework): string {
  const hasStart = code.includes(BLOCK_START);
  const hasEnd = code.includes(BLOCK_END);
  if (hasStart !== hasEnd) {
    throw new ReplyRefused(`the code has ${hasStart ? BLOCK_START : BLOCK_END} without its matching ${hasStart ? BLOCK_END : BLOCK_START}`, 'outside-block');
  }
  if (hasStart) {
    let inner: string;
    try {
      inner = extractBlock(code, 'the reply');
    } catch (err) {
      throw new ReplyRefused((err as Error).message, 'outside-block');
    }
    const outside = code.replace(inner, '\n').split('\n');
    const fixedLines = new Set(fixedPart(framework).split('\n').map((l) => l.trim()));
    const changed = outside.find((l) => l.trim() !== '' && !fixedLines.has(l.trim()));
    if (changed !== undefined) {
      throw new ReplyRefused(
        `the reply changes text outside the EVOLVE-BLOCK: the line ${quote(changed)} is not in the fixed part of frameworks/${framework}.ts; only the code between the markers can change`,
        'outside-block',
      );
    }
    return inner;
  }
  const moduleLine = code.split('\n').find((l) => /^\s*(import|export)\b/.test(l));
  if (moduleLine !== undefined) {
    throw new ReplyRefused(
      `the block contains ${quote(moduleLine)}: imports and exports belong to the fixed part of frameworks/${framework}.ts; send only the code between the EVOLVE-BLOCK markers`,
      'outside-block',
    );
  }
  return code;
}

/** The fence holding the new block: the last one that defines `attention`, else the longest. */
function pickFence<F extends { code: string }>(fences: F[]): F {
  const defining = fences.filter((f) => /\bfunction\s+attention\b|\b(?:const|let|var)\s+attention\s*=/.test(f.code) || f.code.includes(BLOCK_START));
  if (defining.length > 0) return defining[defining.length - 1];
  return fences.reduce((a, b) => (b.code.length > a.code.length ? b : a));
}

/** Refuses a block whose entry point is missing, renamed or has the wrong parameters. */
export function checkEntryPoint(block: string): void {
  const sf = ts.createSourceFile('block.ts', block, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const entries: number[] = [];
  const others: string[] = [];
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name) {
      if (st.name.text === 'attention') entries.push(st.parameters.length);
      else others.push(st.name.text);
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        const init = d.initializer;
        if (!ts.isIdentifier(d.name) || !init || !(ts.isArrowFunction(init) || ts.isFunctionExpression(init))) continue;
        if (d.name.text === 'attention') entries.push(init.parameters.length);
        else others.push(d.name.text);
      }
    }
  }
  if (entries.length === 0) {
    const instead = others.length ? ` (it defines ${others.map((n) => `\`${n}\``).join(', ')} instead; the entry point cannot be renamed)` : '';
    throw new ReplyRefused(`the block does not define \`function attention(tf, ctx, x)\` at its top level${instead}`, 'entry-point');
  }
  if (entries.length > 1) throw new ReplyRefused('the block defines `attention` more than once; define it exactly once', 'entry-point');
  if (entries[0] < 3) {
    throw new ReplyRefused(`\`function attention\` must take the three parameters (tf, ctx, x); it takes ${entries[0]}`, 'entry-point');
  }
}

function describe(prose: string, form: 'diff' | 'block', edits: number): string {
  const text = prose
    .split('\n')
    .map((l) => l.replace(/^\s*(#+|[-*]|\*\*[^*]+\*\*:?)\s*/, '').trim())
    .filter((l) => l !== '')
    .join(' ')
    .replace(/^(description|idea|change)\s*:\s*/i, '');
  if (text) return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 1)}…` : text;
  return form === 'diff' ? `LLM edit (${edits} SEARCH/REPLACE change${edits === 1 ? '' : 's'})` : 'LLM rewrite of the whole block';
}

function parseUnchecked(reply: string, parentBlock: string, framework: Framework): ParsedReply {
  // Local reasoning models (Qwen3, DeepSeek-R1 under vLLM or Ollama) put their thinking in the content.
  const text = reply.replace(/\r\n?/g, '\n').replace(/<think>[\s\S]*?<\/think>/g, '');
  if (text.trim() === '') throw new ReplyRefused('the reply was empty; it must contain SEARCH/REPLACE edits or a whole block in a ```typescript fence', 'empty');
  const lines = text.split('\n');
  const firstEdit = lines.findIndex((l) => SEARCH_RE.test(l) || REPLACE_RE.test(l));
  if (firstEdit >= 0) {
    const edits = parseEdits(lines);
    const block = applyEdits(parentBlock, edits, framework);
    const prose = lines.slice(0, firstEdit).join('\n').replace(/(`{3,}|~{3,})[^\n]*$/, '');
    return { block, description: describe(prose, 'diff', edits.length), form: 'diff', edits: edits.length };
  }
  const fences = [...text.matchAll(FENCE_RE)].map((m) => ({ code: m[2], at: m.index ?? 0 }));
  if (fences.length > 0) {
    const picked = pickFence(fences);
    const prose = text.slice(0, fences[0].at);
    return { block: blockFromCode(picked.code, framework), description: describe(prose, 'block', 0), form: 'block', edits: 0 };
  }
  if (text.includes(BLOCK_START) || text.includes(BLOCK_END)) {
    return { block: blockFromCode(text, framework), description: describe('', 'block', 0), form: 'block', edits: 0 };
  }
  // Some local models answer with bare code: accept it only when it is a whole, valid block.
  if (/\bfunction\s+attention\s*\(/.test(text)) {
    try {
      transpileBlock(text);
      checkEntryPoint(text);
      return { block: blockFromCode(text, framework), description: describe('', 'block', 0), form: 'block', edits: 0 };
    } catch {
      // Falls through to the no-code refusal: prose mentioning the function is not a block.
    }
  }
  throw new ReplyRefused(
    'the reply holds no code: no SEARCH/REPLACE edits and no ```typescript fence with the block',
    'no-code',
  );
}

/**
 * The candidate block a reply proposes, checked for what a reply alone can get wrong: diffs that
 * do not apply, edits outside the block, a missing or renamed entry point, syntax errors, no change.
 * Runtime checks (shape, causality, gradients…) are validation's job.
 */
export function parseReply(reply: string, parentBlock: string, framework: Framework, opts: ParseOptions = {}): ParsedReply {
  try {
    const parsed = parseUnchecked(reply, parentBlock, framework);
    if (parsed.block.trim() === '') throw new ReplyRefused('the reply leaves the EVOLVE-BLOCK empty', 'empty');
    try {
      transpileBlock(parsed.block);
    } catch (err) {
      if (err instanceof ProgramRejected) throw new ReplyRefused(err.message, 'syntax');
      throw err;
    }
    checkEntryPoint(parsed.block);
    if (normalised(parsed.block) === normalised(parentBlock)) {
      throw new ReplyRefused('the reply leaves the parent block unchanged; propose an actual change', 'unchanged');
    }
    return parsed;
  } catch (err) {
    if (err instanceof ReplyRefused && opts.truncatedAt !== undefined) {
      throw new ReplyRefused(`${err.message} (the reply stopped at the max_tokens limit of ${opts.truncatedAt}; answer more briefly)`, err.kind);
    }
    throw err;
  }
}
