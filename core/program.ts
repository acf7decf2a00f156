// A program is a framework file with its EVOLVE-BLOCK replaced; its identity is the hash of its text.
// This module finds, replaces and compiles blocks. Compiling does not make code safe to run:
// candidates only ever execute inside the sandboxed child processes.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as ts from 'typescript';
import { EvoError, ProgramRejected } from './errors';
import { frameworkSourcePath } from './paths';
import type { AttentionFn } from '../evaluator/attention-context';
import { FRAMEWORKS, type Framework } from '../contract';
export { FRAMEWORKS, type Framework };

export const BLOCK_START = '// EVOLVE-BLOCK-START';
export const BLOCK_END = '// EVOLVE-BLOCK-END';

export interface Program {
  framework: Framework;
  /** Full source text of the framework file with this program's block. */
  source: string;
  /** The code between the markers (without them). */
  block: string;
  /** sha256 of `source`, first 16 hex digits. */
  hash: string;
}

export function assertFramework(name: string): Framework {
  if ((FRAMEWORKS as readonly string[]).includes(name)) return name as Framework;
  throw new EvoError(`unknown framework "${name}" (expected one of: ${FRAMEWORKS.join(', ')})`, 'BAD_FRAMEWORK');
}

export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

interface BlockSpan {
  /** Index just after the START marker line. */
  start: number;
  /** Index of the END marker. */
  end: number;
}

function findBlock(source: string, what: string): BlockSpan {
  const first = source.indexOf(BLOCK_START);
  const last = source.lastIndexOf(BLOCK_START);
  const endIdx = source.indexOf(BLOCK_END);
  if (first < 0 || endIdx < 0) throw new ProgramRejected(`${what} has no ${BLOCK_START} … ${BLOCK_END} block`, 'block');
  if (first !== last || endIdx !== source.lastIndexOf(BLOCK_END)) {
    throw new ProgramRejected(`${what} must hold exactly one EVOLVE-BLOCK`, 'block');
  }
  if (endIdx < first) throw new ProgramRejected(`${what}: ${BLOCK_END} comes before ${BLOCK_START}`, 'block');
  const lineEnd = source.indexOf('\n', first);
  return { start: lineEnd < 0 ? source.length : lineEnd + 1, end: endIdx };
}

export function extractBlock(source: string, what = 'program'): string {
  const span = findBlock(source, what);
  return source.slice(span.start, span.end);
}

export function replaceBlock(source: string, block: string): string {
  const span = findBlock(source, 'framework template');
  const body = block.endsWith('\n') ? block : block + '\n';
  return source.slice(0, span.start) + body + source.slice(span.end);
}

const templateCache = new Map<Framework, string>();

export function frameworkTemplate(framework: Framework): string {
  let text = templateCache.get(framework);
  if (text === undefined) {
    text = fs.readFileSync(frameworkSourcePath(framework), 'utf8');
    templateCache.set(framework, text);
  }
  return text;
}

export function makeProgram(framework: Framework, block: string): Program {
  const source = replaceBlock(frameworkTemplate(framework), block);
  return { framework, source, block: extractBlock(source), hash: hashText(source) };
}

/** The block of the framework's own file: softmax attention in that framework's notation. */
export function baselineBlock(framework: Framework): string {
  return extractBlock(frameworkTemplate(framework), `frameworks/${framework}.ts`);
}

export function baselineProgram(framework: Framework): Program {
  return makeProgram(framework, baselineBlock(framework));
}

/**
 * A program from user text: a whole framework file (markers present) or just a block.
 * Only the block is taken; the fixed part always comes from the framework's template.
 */
export function programFromText(framework: Framework, text: string, what = 'program'): Program {
  const block = text.includes(BLOCK_START) || text.includes(BLOCK_END) ? extractBlock(text, what) : text;
  if (block.trim() === '') throw new ProgramRejected(`${what}: the EVOLVE-BLOCK is empty`, 'block');
  return makeProgram(framework, block);
}

/** TypeScript → JavaScript for the block alone; syntax errors become one-line rejections. */
export function transpileBlock(block: string): string {
  const out = ts.transpileModule(block, {
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.None, removeComments: true },
  });
  const diag = out.diagnostics?.find((d) => d.category === ts.DiagnosticCategory.Error);
  if (diag) {
    const msg = ts.flattenDiagnosticMessageText(diag.messageText, ' ');
    const where = diag.file && diag.start !== undefined ? diag.file.getLineAndCharacterOfPosition(diag.start) : undefined;
    throw new ProgramRejected(
      `syntax error in the EVOLVE-BLOCK${where ? ` at block line ${where.line + 1}, column ${where.character + 1}` : ''}: ${msg}`,
      'syntax',
    );
  }
  return out.outputText;
}

/**
 * Compile a block into its `attention` function. Runs the candidate's top-level code:
 * call this only inside a sandboxed child process.
 */
export function compileAttention(block: string): AttentionFn {
  const js = transpileBlock(block);
  let factory: () => unknown;
  try {
    factory = new Function(`"use strict";\n${js}\nreturn typeof attention === "function" ? attention : undefined;`) as () => unknown;
  } catch (err) {
    throw new ProgramRejected(`the EVOLVE-BLOCK does not compile: ${(err as Error).message}`, 'syntax');
  }
  const fn = factory();
  if (typeof fn !== 'function') {
    throw new ProgramRejected('the EVOLVE-BLOCK must define `function attention(tf, ctx, x)`', 'entry-point');
  }
  return fn as AttentionFn;
}
