// First line of defence against a hostile block: walks its TypeScript AST and refuses every way out of
// "tf and ctx only". A filter, not the boundary: candidates still run only inside sandbox/run.ts.
import * as ts from 'typescript';
import { ProgramRejected } from '../core/errors';

export interface StaticFinding {
  /** 1-based line in the EVOLVE-BLOCK. */
  line: number;
  /** The construct, as it should be named to the author: "`process`", "`import()`"… */
  construct: string;
  why: string;
}

/** Globals a block may not name at all (as a reference or a declaration), and why. */
const FORBIDDEN_GLOBALS = new Map<string, string>([
  ['process', "Node's process object is not available"],
  ['globalThis', 'the global object is not available'],
  ['global', 'the global object is not available'],
  ['window', 'the global object is not available'],
  ['self', 'the global object is not available'],
  ['require', 'modules are not available'],
  ['module', 'modules are not available'],
  ['exports', 'modules are not available'],
  ['__dirname', 'the file system is not available'],
  ['__filename', 'the file system is not available'],
  ['eval', 'code generation from strings is not allowed'],
  ['Function', 'code generation from strings is not allowed'],
  ['Reflect', 'reflection is not allowed'],
  ['Proxy', 'proxies are not allowed'],
  ['WebAssembly', 'WebAssembly is not available'],
  ['setTimeout', 'timers are not available (the block must be synchronous)'],
  ['setInterval', 'timers are not available (the block must be synchronous)'],
  ['setImmediate', 'timers are not available (the block must be synchronous)'],
  ['clearTimeout', 'timers are not available'],
  ['clearInterval', 'timers are not available'],
  ['clearImmediate', 'timers are not available'],
  ['queueMicrotask', 'timers are not available (the block must be synchronous)'],
  ['fetch', 'the network is not available'],
  ['XMLHttpRequest', 'the network is not available'],
  ['WebSocket', 'the network is not available'],
  ['EventSource', 'the network is not available'],
  ['Buffer', "Node's Buffer is not available"],
  ['SharedArrayBuffer', 'shared memory is not available'],
  ['Atomics', 'shared memory is not available'],
  ['Worker', 'threads are not available'],
  ['arguments', '`arguments` is not allowed (name the parameters)'],
  ['atob', 'string decoding helpers are not allowed'],
  ['unescape', 'string decoding helpers are not allowed'],
  ['TextDecoder', 'string decoding helpers are not allowed'],
]);

/** Property names refused on any object: prototype walks, getters/setters by name, reflection. */
const FORBIDDEN_MEMBERS = new Map<string, string>([
  ['constructor', 'reaching constructors is not allowed (constructor chains lead to Function)'],
  ['__proto__', 'prototype access is not allowed'],
  ['prototype', 'prototype access is not allowed'],
  ['caller', 'stack inspection is not allowed'],
  ['callee', 'stack inspection is not allowed'],
  ['arguments', 'stack inspection is not allowed'],
  ['__defineGetter__', 'accessor tricks are not allowed'],
  ['__defineSetter__', 'accessor tricks are not allowed'],
  ['__lookupGetter__', 'accessor tricks are not allowed'],
  ['__lookupSetter__', 'accessor tricks are not allowed'],
  ['defineProperty', 'redefining properties is not allowed'],
  ['defineProperties', 'redefining properties is not allowed'],
  ['setPrototypeOf', 'prototype access is not allowed'],
  ['getPrototypeOf', 'prototype access is not allowed'],
  ['getOwnPropertyDescriptor', 'reflection is not allowed'],
  ['getOwnPropertyDescriptors', 'reflection is not allowed'],
  ['getOwnPropertyNames', 'reflection is not allowed'],
  ['getOwnPropertySymbols', 'reflection is not allowed'],
  ['fromCharCode', 'building strings from character codes is not allowed'],
  ['fromCodePoint', 'building strings from character codes is not allowed'],
  ['mainModule', 'modules are not available'],
  ['binding', 'internal bindings are not available'],
  ['fetch', 'the network is not available'],
]);

/** Members of the tf namespace that reach I/O, the backend, global state or untracked variables. */
const FORBIDDEN_TF_MEMBERS = new Map<string, string>([
  ['io', 'tf.io does file and network I/O'],
  ['data', 'tf.data reads files and URLs'],
  ['util', 'tf.util reaches platform helpers such as fetch'],
  ['env', "tf.env() changes the backend's global flags"],
  ['engine', "tf.engine() reaches the engine's global state"],
  ['backend', "tf.backend() reaches the backend's internals"],
  ['setBackend', 'changing the backend is not allowed'],
  ['removeBackend', 'changing the backend is not allowed'],
  ['registerBackend', 'changing the backend is not allowed'],
  ['findBackend', "reaching the backend's internals is not allowed"],
  ['findBackendFactory', "reaching the backend's internals is not allowed"],
  ['registerKernel', 'registering kernels is not allowed'],
  ['unregisterKernel', 'registering kernels is not allowed'],
  ['registerGradient', 'registering gradients is not allowed'],
  ['unregisterGradient', 'registering gradients is not allowed'],
  ['copyRegisteredKernels', 'registering kernels is not allowed'],
  ['setPlatform', 'changing the platform is not allowed'],
  ['loadLayersModel', 'loading models does I/O'],
  ['loadGraphModel', 'loading models does I/O'],
  ['browser', 'browser I/O is not available'],
  ['variable', 'weights must come from ctx.param (a tf.variable is not trained and leaks)'],
  ['keep', 'tf.keep leaks tensors across steps'],
  ['disposeVariables', "disposing every variable breaks the model's weights"],
  ['enableDebugMode', "changing tfjs's global mode is not allowed"],
  ['enableProdMode', "changing tfjs's global mode is not allowed"],
  ['profile', 'profiling is not allowed'],
  ['ready', 'the block must be synchronous'],
  ['nextFrame', 'timers are not available'],
  ['serialization', "registering classes changes tfjs's global state"],
]);

/** Built-in namespaces whose members a block may not assign or delete. */
const PROTECTED_ROOTS = new Set([
  'Math', 'Object', 'Array', 'JSON', 'Number', 'String', 'Boolean', 'Symbol', 'Date', 'Promise', 'Error', 'RegExp',
  'Map', 'Set', 'WeakMap', 'WeakSet', 'BigInt', 'Intl', 'console', 'Float32Array', 'Float64Array', 'Int32Array',
  'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'ArrayBuffer', 'DataView', 'TypeError',
  'RangeError',
]);

const ASSIGNMENT_OPERATORS = new Set([
  ts.SyntaxKind.EqualsToken, ts.SyntaxKind.PlusEqualsToken, ts.SyntaxKind.MinusEqualsToken, ts.SyntaxKind.AsteriskEqualsToken,
  ts.SyntaxKind.AsteriskAsteriskEqualsToken, ts.SyntaxKind.SlashEqualsToken, ts.SyntaxKind.PercentEqualsToken,
  ts.SyntaxKind.LessThanLessThanEqualsToken, ts.SyntaxKind.GreaterThanGreaterThanEqualsToken,
  ts.SyntaxKind.GreaterThanGreaterThanGreaterThanEqualsToken, ts.SyntaxKind.AmpersandEqualsToken, ts.SyntaxKind.BarEqualsToken,
  ts.SyntaxKind.CaretEqualsToken, ts.SyntaxKind.BarBarEqualsToken, ts.SyntaxKind.AmpersandAmpersandEqualsToken,
  ts.SyntaxKind.QuestionQuestionEqualsToken,
]);

/** The identifier at the root of `a.b[c].d`, if any. */
function rootIdentifier(node: ts.Expression): ts.Identifier | undefined {
  let e: ts.Expression = node;
  for (;;) {
    if (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = e.expression;
    else if (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e) || ts.isAsExpression(e)) e = e.expression;
    else return ts.isIdentifier(e) ? e : undefined;
  }
}

function isStringy(node: ts.Expression): boolean {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node)) return true;
  if (ts.isParenthesizedExpression(node)) return isStringy(node.expression);
  return ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken && (isStringy(node.left) || isStringy(node.right));
}

/** Names the `attention` function gives its tf and ctx parameters (plus the conventional ones). */
function contractNames(sf: ts.SourceFile): { tf: Set<string>; ctx: Set<string> } {
  const tf = new Set(['tf']);
  const ctx = new Set(['ctx']);
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name?.text === 'attention') {
      const [p0, p1] = st.parameters;
      if (p0 && ts.isIdentifier(p0.name)) tf.add(p0.name.text);
      if (p1 && ts.isIdentifier(p1.name)) ctx.add(p1.name.text);
    }
  }
  return { tf, ctx };
}

/** Every finding in the block, in source order. Syntax errors are transpileBlock's job (see program.ts). */
export function staticFindings(block: string): StaticFinding[] {
  const sf = ts.createSourceFile('block.ts', block, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const findings: StaticFinding[] = [];
  const names = contractNames(sf);
  const protectedRoots = new Set([...PROTECTED_ROOTS, ...names.tf, ...names.ctx]);
  const report = (node: ts.Node, construct: string, why: string): void => {
    findings.push({ line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, construct, why });
  };
  const checkMemberName = (node: ts.Node, name: string): void => {
    const why = FORBIDDEN_MEMBERS.get(name);
    if (why) report(node, `\`.${name}\``, why);
  };
  const checkTfMember = (node: ts.Node, receiver: ts.Expression, name: string): void => {
    const why = FORBIDDEN_TF_MEMBERS.get(name);
    if (why && ts.isIdentifier(receiver) && names.tf.has(receiver.text)) report(node, `\`${receiver.text}.${name}\``, why);
  };
  const checkAssignmentTarget = (node: ts.Node, target: ts.Expression, verb: string): void => {
    if (!ts.isPropertyAccessExpression(target) && !ts.isElementAccessExpression(target)) return;
    const root = rootIdentifier(target);
    if (root && protectedRoots.has(root.text)) {
      report(node, `\`${target.getText(sf)}\``, `${verb} members of ${root.text} is not allowed (tf, ctx and built-ins are read-only)`);
    }
  };

  const visit = (node: ts.Node, inClass: boolean): void => {
    // Types vanish in the emitted JavaScript: nothing inside them runs. A class's `extends X` is the
    // exception: TypeScript parses it as a type node, but X is evaluated.
    if (ts.isExpressionWithTypeArguments(node)) {
      const clause = node.parent;
      if (ts.isHeritageClause(clause) && clause.token === ts.SyntaxKind.ExtendsKeyword && ts.isClassLike(clause.parent)) {
        visit(node.expression, inClass);
      }
      return;
    }
    if (ts.isTypeNode(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) return;

    if (ts.isImportDeclaration(node) || ts.isImportEqualsDeclaration(node)) report(node, '`import`', 'modules are not available');
    else if (ts.isExportDeclaration(node) || ts.isExportAssignment(node)) report(node, '`export`', 'the block must not export anything');
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) report(node, '`import()`', 'modules are not available');
    else if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) report(node, '`import.meta`', 'modules are not available');
    else if (ts.isWithStatement(node)) report(node, '`with`', 'with statements are not allowed');
    else if (ts.isDebuggerStatement(node)) report(node, '`debugger`', 'debugger statements are not allowed');
    else if (ts.isDecorator(node)) report(node, 'a decorator', 'decorators are not allowed');
    else if (node.kind === ts.SyntaxKind.ThisKeyword && !inClass) report(node, '`this`', '`this` is only allowed inside a class the block defines');
    else if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      report(node, '`export`', 'the block must not export anything');
    }

    if (ts.isIdentifier(node)) checkIdentifier(node);
    else if (ts.isPropertyAccessExpression(node)) {
      checkMemberName(node.name, node.name.text);
      checkTfMember(node, node.expression, node.name.text);
    } else if (ts.isElementAccessExpression(node)) {
      const key = node.argumentExpression;
      if (ts.isStringLiteral(key) || ts.isNoSubstitutionTemplateLiteral(key)) {
        checkMemberName(key, key.text);
        checkTfMember(node, node.expression, key.text);
      } else if (isStringy(key)) {
        report(key, 'a property name built from strings', 'computed property names must be literals, numbers or variables');
      }
    } else if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && FORBIDDEN_MEMBERS.has(node.text)) {
      // A bare 'constructor' string only ever serves to look the property up later.
      if (!ts.isElementAccessExpression(node.parent)) report(node, `the string '${node.text}'`, FORBIDDEN_MEMBERS.get(node.text) as string);
    } else if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
      const key = node.propertyName ?? node.name;
      if (ts.isIdentifier(key) || ts.isStringLiteral(key)) {
        checkMemberName(key, key.text);
        const decl = node.parent.parent;
        if (ts.isVariableDeclaration(decl) && decl.initializer) checkTfMember(node, decl.initializer, key.text);
      }
    } else if (ts.isBinaryExpression(node) && ASSIGNMENT_OPERATORS.has(node.operatorToken.kind)) {
      checkAssignmentTarget(node, node.left, 'assigning to');
    } else if ((ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) &&
      (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken)) {
      checkAssignmentTarget(node, node.operand, 'changing');
    } else if (ts.isDeleteExpression(node)) {
      checkAssignmentTarget(node, node.expression, 'deleting');
    } else if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) && node.expression.expression.text === 'Object' &&
      node.expression.name.text === 'assign' && node.arguments.length > 0) {
      const target = node.arguments[0];
      const root = ts.isIdentifier(target) ? target : rootIdentifier(target);
      if (root && protectedRoots.has(root.text)) {
        report(node, `\`Object.assign(${target.getText(sf)}, …)\``, `changing members of ${root.text} is not allowed (tf, ctx and built-ins are read-only)`);
      }
    }

    const childInClass = inClass || ts.isClassDeclaration(node) || ts.isClassExpression(node);
    ts.forEachChild(node, (child) => visit(child, childInClass));
  };

  const checkIdentifier = (id: ts.Identifier): void => {
    const name = id.text;
    const parent = id.parent;
    // Member names and object keys are not references; BindingElement keys are checked as members.
    if (ts.isPropertyAccessExpression(parent) && parent.name === id) return;
    if (ts.isBindingElement(parent) && parent.propertyName === id) return;
    if ((ts.isPropertyAssignment(parent) || ts.isMethodDeclaration(parent) || ts.isPropertyDeclaration(parent) ||
      ts.isGetAccessorDeclaration(parent) || ts.isSetAccessorDeclaration(parent) || ts.isEnumMember(parent)) && parent.name === id) {
      if (name === '__proto__' && ts.isPropertyAssignment(parent)) report(id, '`__proto__:`', FORBIDDEN_MEMBERS.get('__proto__') as string);
      return;
    }
    if (ts.isLabeledStatement(parent) || ts.isBreakOrContinueStatement(parent)) return;
    const why = FORBIDDEN_GLOBALS.get(name);
    if (why) report(id, `\`${name}\``, why);
  };

  visit(sf, false);
  return findings;
}

/** "static: block line 4 uses `process`: Node's process object is not available". */
export function describeFinding(f: StaticFinding): string {
  return `static: block line ${f.line} uses ${f.construct}: ${f.why}`;
}

/** Throws a ProgramRejected (check 'static') naming the first forbidden construct and its block line. */
export function assertStaticallySafe(block: string): void {
  const findings = staticFindings(block);
  if (findings.length === 0) return;
  const more = findings.length > 1 ? ` (and ${findings.length - 1} more)` : '';
  throw new ProgramRejected(describeFinding(findings[0]) + more, 'static');
}
