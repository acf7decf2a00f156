// The layout as a specification: stages import only downward, so no import cycle can form, the
// contract depends on nothing, and workers and scripts never reach into the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../core/paths';

const SKIP = new Set(['node_modules', 'dist', 'test', 'runs']);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Project files a source file imports: static, type-only, re-exports and dynamic imports alike. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  const out: string[] = [];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec.replace(/\.js$/, ''));
    const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((c) => fs.existsSync(c));
    assert.ok(hit, `${path.relative(repoRoot, file)} imports ${spec}, which is not a project file`);
    out.push(hit);
  }
  return out;
}

const files = sourceFiles(repoRoot);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => path.relative(repoRoot, f);

/** Every cycle's files, by depth-first search with the current path on a stack. */
function cycles(): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const dep of graph.get(f) ?? []) {
      if (state.get(dep) === 'open') found.push(stack.slice(stack.indexOf(dep)).map(rel));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

test('no import cycle among the project source files (type-only imports included)', () => {
  assert.ok(files.length > 50, `found only ${files.length} source files`);
  assert.deepEqual(cycles(), []);
});

test('the cycle check finds a cycle when one is planted', () => {
  const a = path.join(repoRoot, 'a.ts');
  const b = path.join(repoRoot, 'b.ts');
  graph.set(a, [b]);
  graph.set(b, [a]);
  files.push(a, b);
  try {
    assert.deepEqual(cycles(), [['a.ts', 'b.ts']]);
  } finally {
    graph.delete(a);
    graph.delete(b);
    files.splice(files.length - 2, 2);
  }
});

test('the contract imports no project module', () => {
  for (const f of files.filter((f) => rel(f).startsWith(`contract${path.sep}`))) {
    assert.deepEqual(graph.get(f)!.map(rel), [], `${rel(f)} must stay dependency-free`);
  }
});

test('workers and scripts import no CLI code', () => {
  for (const f of files.filter((f) => /^(workers|scripts)\//.test(rel(f)))) {
    const cli = graph.get(f)!.map(rel).filter((d) => d.startsWith(`cli${path.sep}`));
    assert.deepEqual(cli, [], `${rel(f)} imports the CLI`);
  }
});
