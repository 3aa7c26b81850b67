/**
 * The import graph of a source tree and the layer rules of `src/` (see the README's "Repository" section), for
 * test/unit/layers.test.ts.
 *
 * TypeScript 7 (the Go port) ships no JavaScript compiler API to parse with (`typescript` exports only a version and
 * an unstable client for the Go process), so import specifiers come from a small tokenizer here: it skips comments,
 * strings, template literals (with nested `${}`) and regular expression literals, so an `import` inside any of those
 * is not mistaken for one. It throws on an unterminated comment, string, template or regex instead of guessing, so a
 * tokenizer that lost its place fails the test loudly rather than missing imports quietly.
 *
 * Recognised: `import x from '…'`, `import type … from '…'`, `import { a, type b } from '…'` (across lines),
 * `import * as n from '…'`, `import '…'`, `export * from '…'`, `export * as n from '…'`, `export { a } from '…'`,
 * `export type { a } from '…'`, and `import('…')` with a string literal (also `typeof import('…')` in types).
 * Only relative specifiers (`./`, `../`) are resolved; package imports (ioredis, node:*) are not part of the graph.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer and import scanner
// ---------------------------------------------------------------------------------------------------------------

type TokenKind = 'id' | 'str' | 'template' | 'num' | 'regex' | 'punct';
interface Token {
  kind: TokenKind;
  /** Identifier name, punctuation character, or the raw text between a string's quotes. */
  value: string;
  pos: number;
}

export interface ImportRef {
  specifier: string;
  /** `import … from '…'`, `import '…'` (side effect only), `export … from '…'`, or `import('…')`. */
  kind: 'import' | 'side-effect' | 'export' | 'dynamic';
  /** `import type …` / `export type …` (the whole statement; `import { type a }` counts as a value import). */
  typeOnly: boolean;
  /** 1-based line of the `import` / `export` keyword. */
  line: number;
}

const ID_START = /[\p{ID_Start}$_\\]/uy;
const ID_PART = /[\p{ID_Continue}$\u200c\u200d\\]*/uy;
const NUMBER = /(?:\d|\.\d)[\w.]*/y;
/** After these keywords a `/` starts a regular expression; after any other identifier it divides. */
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield',
  'await', 'extends',
]);
const isLineBreak = (c: string) => c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029';

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  /** For each template substitution `${` still open: the brace depth it opened at. */
  const templates: number[] = [];
  let depth = 0;
  let i = 0;
  const n = src.length;
  const where = (at: number) => `line ${lineAt(src, at)}`;

  /** Scan a template part from just after `` ` `` or `}`; returns the index after `` ` `` or `${`. */
  const templatePart = (from: number): { end: number; substitution: boolean } => {
    for (let j = from; j < n; j++) {
      const c = src[j];
      if (c === '\\') j++;
      else if (c === '`') return { end: j + 1, substitution: false };
      else if (c === '$' && src[j + 1] === '{') return { end: j + 2, substitution: true };
    }
    throw new Error(`unterminated template literal at ${where(from)}`);
  };

  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (!prev) return true;
    if (prev.kind === 'id') return REGEX_AFTER_KEYWORD.has(prev.value);
    if (prev.kind === 'punct') return !(prev.value === ')' || prev.value === ']' || prev.value === '}');
    return false; // after a string, number, template or regex, `/` divides
  };

  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || isLineBreak(c) || c === '\f' || c === '\v' || c === '\ufeff' || /\s/u.test(c)) {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < n && !isLineBreak(src[i])) i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated block comment at ${where(i)}`);
      i = end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c) {
        if (src[j] === '\\') j += 2;
        else if (isLineBreak(src[j])) throw new Error(`unterminated string at ${where(i)}`);
        else j++;
      }
      if (j >= n) throw new Error(`unterminated string at ${where(i)}`);
      tokens.push({ kind: 'str', value: src.slice(i + 1, j), pos: i });
      i = j + 1;
    } else if (c === '`') {
      const part = templatePart(i + 1);
      if (part.substitution) {
        templates.push(depth);
        tokens.push({ kind: 'template', value: src.slice(i, part.end), pos: i });
      } else {
        // A template without substitutions is a literal like a string (`import(\`./x.ts\`)`).
        tokens.push({ kind: 'str', value: src.slice(i + 1, part.end - 1), pos: i });
      }
      i = part.end;
    } else if (c === '}' && templates.length > 0 && templates[templates.length - 1] === depth) {
      templates.pop();
      const part = templatePart(i + 1);
      if (part.substitution) templates.push(depth);
      tokens.push({ kind: 'template', value: src.slice(i, part.end), pos: i });
      i = part.end;
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      for (; j < n; j++) {
        const r = src[j];
        if (r === '\\') j++;
        else if (isLineBreak(r)) throw new Error(`unterminated regular expression at ${where(i)}`);
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
      }
      if (j >= n) throw new Error(`unterminated regular expression at ${where(i)}`);
      j++;
      while (j < n && /[a-z]/i.test(src[j])) j++;
      tokens.push({ kind: 'regex', value: src.slice(i, j), pos: i });
      i = j;
    } else if ((ID_START.lastIndex = i, ID_START.test(src))) {
      ID_PART.lastIndex = ID_START.lastIndex;
      ID_PART.test(src);
      tokens.push({ kind: 'id', value: src.slice(i, ID_PART.lastIndex), pos: i });
      i = ID_PART.lastIndex;
    } else if ((NUMBER.lastIndex = i, NUMBER.test(src))) {
      tokens.push({ kind: 'num', value: src.slice(i, NUMBER.lastIndex), pos: i });
      i = NUMBER.lastIndex;
    } else {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      tokens.push({ kind: 'punct', value: c, pos: i });
      i++;
    }
  }
  if (templates.length > 0) throw new Error('unterminated template substitution at end of file');
  return tokens;
}

function lineAt(src: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos; i++) if (src[i] === '\n') line++;
  return line;
}

const isPunct = (t: Token | undefined, v: string) => t?.kind === 'punct' && t.value === v;
const isId = (t: Token | undefined, v?: string) => t?.kind === 'id' && (v === undefined || t.value === v);

/**
 * The specifier of an import or export clause that starts at `tokens[start]` (just after `import` / `export` /
 * `type`), or null when the statement has no `from '…'` (`export { a };`, `export const …`). Walks only tokens
 * that can appear in a clause (names, `{ } , *`, and string names inside braces), so it never runs on into the
 * next statement.
 */
function clauseSource(tokens: Token[], start: number): string | null {
  let braces = 0;
  for (let j = start; j < tokens.length; j++) {
    const t = tokens[j];
    if (braces === 0 && isId(t, 'from') && tokens[j + 1]?.kind === 'str') return tokens[j + 1].value;
    if (isPunct(t, '{')) braces++;
    else if (isPunct(t, '}')) {
      if (--braces < 0) return null;
      if (braces === 0 && !isId(tokens[j + 1], 'from')) return null;
    } else if (isPunct(t, ',') || isPunct(t, '*')) continue;
    else if (t.kind === 'str' && braces > 0) continue;
    else if (t.kind === 'id') {
      if (braces === 0 && (t.value === 'import' || t.value === 'export')) return null;
    } else return null;
  }
  return null;
}

/** Every import and re-export in a TypeScript source text, in source order. */
export function scanImports(src: string): ImportRef[] {
  const tokens = tokenize(src);
  const refs: ImportRef[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!isId(t) || (t.value !== 'import' && t.value !== 'export')) continue;
    const prev = tokens[i - 1];
    if (isPunct(prev, '.') || isPunct(prev, '#')) continue; // `x.import`, `#import`
    const next = tokens[i + 1];
    const next2 = tokens[i + 2];
    const line = lineAt(src, t.pos);
    if (t.value === 'import') {
      if (isPunct(next, '(')) {
        // import('…') — only a literal specifier can be resolved; `import(variable)` is left alone.
        if (next2?.kind === 'str' && (isPunct(tokens[i + 3], ')') || isPunct(tokens[i + 3], ','))) {
          refs.push({ specifier: next2.value, kind: 'dynamic', typeOnly: false, line });
        }
      } else if (next?.kind === 'str') {
        refs.push({ specifier: next.value, kind: 'side-effect', typeOnly: false, line }); // import '…'
      } else if (isId(next) || isPunct(next, '{') || isPunct(next, '*')) {
        // `import type from '…'` and `import type, { a } from '…'` import a default named `type`.
        const typeOnly = isId(next, 'type') && !isPunct(next2, ',') && !(isId(next2, 'from') && tokens[i + 3]?.kind === 'str');
        const specifier = clauseSource(tokens, i + 1);
        if (specifier !== null) refs.push({ specifier, kind: 'import', typeOnly, line });
      }
    } else {
      const typeOnly = isId(next, 'type') && (isPunct(next2, '{') || isPunct(next2, '*'));
      const clause = typeOnly ? next2 : next;
      if (isPunct(clause, '{') || isPunct(clause, '*')) {
        const specifier = clauseSource(tokens, typeOnly ? i + 2 : i + 1);
        if (specifier !== null) refs.push({ specifier, kind: 'export', typeOnly, line });
      }
    }
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------------------------
// Import graph
// ---------------------------------------------------------------------------------------------------------------

export interface ImportEdge extends ImportRef {
  /** Importing file, relative to the root, with `/` separators. */
  from: string;
  /** Imported file relative to the root, or null when the specifier resolves to no file under the root. */
  to: string | null;
}

export interface ImportGraph {
  /** Every `.ts` file under the root (relative, `/` separators, sorted). */
  files: string[];
  /** Every relative import of those files (package imports are left out). */
  edges: ImportEdge[];
}

const toPosix = (p: string) => p.split(sep).join('/');

function listTs(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(root, path));
    else if (name.endsWith('.ts')) out.push(toPosix(relative(root, path)));
  }
  return out;
}

/** The file a relative specifier names, as Node (with `.ts` specifiers) and TypeScript's nodenext resolve it. */
function resolveSpecifier(root: string, from: string, specifier: string): string | null {
  const base = resolve(root, dirname(from), specifier);
  const candidates = [base];
  if (base.endsWith('.js')) candidates.push(base.slice(0, -3) + '.ts');
  candidates.push(base + '.ts', join(base, 'index.ts'));
  for (const c of candidates) {
    const rel = toPosix(relative(root, c));
    if (rel.startsWith('..') || posix.isAbsolute(rel)) return null; // outside the root
    if (existsSync(c) && statSync(c).isFile()) return rel;
  }
  return null;
}

/** The relative-import graph of every `.ts` file under `root`. */
export function importGraph(root: string): ImportGraph {
  const files = listTs(root);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    let refs: ImportRef[];
    try {
      refs = scanImports(readFileSync(join(root, from), 'utf8'));
    } catch (err) {
      throw new Error(`cannot scan ${from}: ${(err as Error).message}`);
    }
    for (const ref of refs) {
      if (!ref.specifier.startsWith('./') && !ref.specifier.startsWith('../')) continue;
      edges.push({ ...ref, from, to: resolveSpecifier(root, from, ref.specifier) });
    }
  }
  return { files, edges };
}

// ---------------------------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------------------------

/** The layers of src/, lowest first; the names on one level are peers and must not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ['common'],
  ['protocol'],
  ['stores'],
  ['broker', 'backend'],
  ['task'],
  ['app'],
  ['worker', 'beat', 'control'],
  ['cli'],
];
/** Files at the top of src/ that are public entry points: above every layer, but never importing `cli`. */
export const ENTRY_POINTS: readonly string[] = ['index.ts', 'testing.ts'];
/** Layers whose sub-folders are interchangeable implementations (`broker/redis`, `broker/sqlite`, …). */
export const FAMILIES: readonly string[] = ['stores', 'broker', 'backend'];

const ORDER = LAYERS.map((level) => level.join(', ')).join(' → ') + ' → (' + ENTRY_POINTS.join(', ') + ')';

interface Place {
  /** Layer name, `entry` for an entry point, or null for a file in no layer. */
  layer: string | null;
  level: number;
  /** For a file in `broker/redis/…` and the like: `redis`. */
  impl: string | null;
}

export function placeOf(file: string): Place {
  const parts = file.split('/');
  if (parts.length === 1) {
    return ENTRY_POINTS.includes(file) ? { layer: 'entry', level: LAYERS.length, impl: null } : { layer: null, level: -1, impl: null };
  }
  const level = LAYERS.findIndex((names) => names.includes(parts[0]));
  if (level < 0) return { layer: null, level: -1, impl: null };
  const impl = FAMILIES.includes(parts[0]) && parts.length >= 3 ? parts[1] : null;
  return { layer: parts[0], level, impl };
}

/** `src/a.ts:3 imports '../b.ts' (type-only)` — the file, line and import a message is about. */
function describe(prefix: string, e: ImportEdge): string {
  const how =
    e.kind === 'dynamic' ? `import('${e.specifier}')` : e.kind === 'side-effect' ? `import '${e.specifier}'` : `${e.kind} … from '${e.specifier}'`;
  return `${prefix}${e.from}:${e.line} ${how}${e.typeOnly ? ' (type-only)' : ''}${e.to ? ` → ${prefix}${e.to}` : ''}`;
}

/** Sanity: every file lies in a layer (or is an entry point) and every relative import names a file under the root. */
export function unplacedFilesAndUnresolvedImports(graph: ImportGraph, prefix = ''): string[] {
  const out: string[] = [];
  for (const f of graph.files) {
    if (placeOf(f).layer === null) out.push(`${prefix}${f} belongs to no layer (layers: ${ORDER}); add its folder to the README's layers and to LAYERS in test/helpers/imports.ts`);
  }
  for (const e of graph.edges) {
    if (e.to === null) out.push(`${describe(prefix, e)} resolves to no .ts file under ${prefix || 'the root'}, so the layer rules cannot check it`);
  }
  return out;
}

/** Rule 1: no import cycle between files (type-only and dynamic imports count). One shortest cycle per tangle. */
export function importCycles(graph: ImportGraph): string[][] {
  const next = new Map<string, string[]>(graph.files.map((f) => [f, []]));
  for (const e of graph.edges) {
    if (e.to !== null && !next.get(e.from)!.includes(e.to)) next.get(e.from)!.push(e.to);
  }
  // Tarjan's strongly connected components.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component);
    }
  };
  for (const f of graph.files) if (!index.has(f)) connect(f);

  const cycles: string[][] = [];
  for (const component of components) {
    const members = new Set(component);
    const start = [...component].sort()[0];
    if (component.length === 1 && !next.get(start)!.includes(start)) continue;
    // Shortest path start → … → start inside the component (breadth first).
    const cameFrom = new Map<string, string>();
    const queue = [start];
    let found = false;
    while (queue.length > 0 && !found) {
      const v = queue.shift()!;
      for (const w of next.get(v)!) {
        if (!members.has(w)) continue;
        if (w === start) {
          cameFrom.set(start, v);
          found = true;
          break;
        }
        if (!cameFrom.has(w)) {
          cameFrom.set(w, v);
          queue.push(w);
        }
      }
    }
    const cycle = [start];
    for (let v = cameFrom.get(start)!; v !== start; v = cameFrom.get(v)!) cycle.unshift(v);
    cycle.unshift(start);
    cycles.push(cycle);
  }
  return cycles.sort((a, b) => a[0].localeCompare(b[0]));
}

export function cycleViolations(graph: ImportGraph, prefix = ''): string[] {
  return importCycles(graph).map((cycle) => `import cycle: ${cycle.map((f) => prefix + f).join(' → ')} (rule 1: no import cycle between files)`);
}

/** Rule 2: each layer imports only itself and layers below it; peers never import each other; nothing imports `cli`. */
export function layerOrderViolations(graph: ImportGraph, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of graph.edges) {
    if (e.to === null) continue;
    const a = placeOf(e.from);
    const b = placeOf(e.to);
    if (a.layer === null || b.layer === null || a.layer === b.layer) continue;
    let why: string | null = null;
    if (b.layer === 'cli') why = `nothing imports cli (cli is the top layer${a.layer === 'entry' ? '; entry points may import anything else' : ''})`;
    else if (b.level === a.level) why = `${a.layer} and ${b.layer} are peers on one level and never import each other`;
    else if (b.level > a.level) why = `${a.layer} must not import ${b.layer === 'entry' ? 'an entry point' : `${b.layer}, a layer above it`}`;
    if (why) out.push(`${describe(prefix, e)}: ${why} (rule 2: layer order ${ORDER})`);
  }
  return out;
}

/**
 * Rule 3: an implementation (`broker/redis`, `backend/sqlite`, `stores/redis`, …) never imports a sibling
 * implementation of its own layer; a broker or backend implementation uses only the store of its own name
 * (`broker/redis` → `stores/redis`, never `stores/sqlite`); and backends never import from `broker/` at all.
 */
export function implementationViolations(graph: ImportGraph, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of graph.edges) {
    if (e.to === null) continue;
    const a = placeOf(e.from);
    const b = placeOf(e.to);
    let why: string | null = null;
    if (a.layer === 'backend' && b.layer === 'broker') {
      why = 'backends never import from broker/ (not even its contract types)';
    } else if (a.impl !== null && b.impl !== null && a.layer === b.layer && a.impl !== b.impl) {
      why = `${a.layer}/${a.impl} must not import its sibling implementation ${b.layer}/${b.impl}`;
    } else if (a.impl !== null && b.impl !== null && a.layer !== 'stores' && b.layer === 'stores' && a.impl !== b.impl) {
      why = `${a.layer}/${a.impl} may use only stores/${a.impl}, not stores/${b.impl}`;
    }
    if (why) out.push(`${describe(prefix, e)}: ${why} (rule 3: implementations stay apart)`);
  }
  return out;
}

/** Rule 4: `common` imports nothing internal outside `common`; `protocol` imports only `common` (and itself). */
export function foundationViolations(graph: ImportGraph, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of graph.edges) {
    const a = placeOf(e.from);
    if (a.layer !== 'common' && a.layer !== 'protocol') continue;
    const b = e.to === null ? null : placeOf(e.to).layer;
    const allowed = a.layer === 'common' ? ['common'] : ['common', 'protocol'];
    if (b !== null && allowed.includes(b)) continue;
    const why = a.layer === 'common' ? 'common imports nothing internal outside common' : 'protocol imports only common (and protocol)';
    out.push(`${describe(prefix, e)}: ${why} (rule 4)`);
  }
  return out;
}
