// The layer rules of src/ from the README's "Repository" section: common → protocol → stores → broker, backend →
// task → app → worker, beat, control → cli, with src/index.ts and src/testing.ts on top. Checked over the real src/
// (one test per rule), after proving on a small fake tree that the checker reports each kind of violation and on a
// source text that the import scanner finds every form of import and nothing in comments, strings or regexes.
// The scanner and the rules live in test/helpers/imports.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cycleViolations,
  foundationViolations,
  implementationViolations,
  importCycles,
  importGraph,
  layerOrderViolations,
  scanImports,
  unplacedFilesAndUnresolvedImports,
  type ImportGraph,
} from '../helpers/imports.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Passes when `violations` is empty; otherwise fails with every violation on its own line. */
function assertNone(rule: string, violations: string[]): void {
  assert.ok(violations.length === 0, `${rule}: ${violations.length} violation(s) in src/\n  ${violations.join('\n  ')}`);
}

/** Each expected fragment matches exactly one reported violation, and nothing else is reported. */
function assertReports(violations: string[], expected: string[]): void {
  const shown = `reported:\n  ${violations.join('\n  ') || '(nothing)'}`;
  for (const fragment of expected) {
    const hits = violations.filter((v) => v.includes(fragment));
    assert.equal(hits.length, 1, `expected one violation containing ${JSON.stringify(fragment)}; ${shown}`);
  }
  assert.equal(violations.length, expected.length, `expected ${expected.length} violation(s); ${shown}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The scanner
// ---------------------------------------------------------------------------------------------------------------

test('scanner: finds every form of import and re-export, and none in comments, strings, templates or regexes', () => {
  const source = [
    "import a from './a.ts';", // 1
    "import type { B } from './b.ts';",
    'import {',
    '  c,',
    '  type C2,',
    "  'd-e' as de,",
    "} from './c.ts';",
    "import * as ns from './ns.ts';",
    "import './side.ts';",
    "import type from './default-named-type.ts';", // 10
    "import ioredis, { type Redis } from 'ioredis';",
    "export * from './star.ts';",
    "export * as starNs from './star-ns.ts';",
    'export {',
    '  x,',
    '  y as z,',
    "} from './named.ts';",
    "export type { T } from './types.ts';",
    'export { local };',
    'export const notAnImport = 1;', // 20
    "const lazy = await import('./lazy.ts');",
    'const tpl = await import(`./tpl.ts`);',
    'const computed = await import(specifier);',
    "type Q = typeof import('./query.ts').Q;",
    "// import './in-line-comment.ts';",
    "/* import x from './in-block-comment.ts'; */",
    "/** export * from './in-jsdoc.ts' */",
    'const s1 = "import \'./in-string.ts\'";',
    "const s2 = 'export * from \\'./in-escaped-string.ts\\'';",
    "const t = `import('./in-template.ts') ${cond ? `import './nested.ts'` : { a: 1 }.a} import './after.ts'`;", // 30
    "const re = /import '.\\/in-regex.ts'/g; const d = 4 / 2 / 1;",
    "obj.import('./method-call.ts'); const meta = import.meta.url;",
    "export default function f() { return import('./in-function.ts'); }",
  ].join('\n');
  const found = scanImports(source).map((r) => `${r.line} ${r.kind}${r.typeOnly ? ' type' : ''} ${r.specifier}`);
  assert.deepEqual(found, [
    '1 import ./a.ts',
    '2 import type ./b.ts',
    '3 import ./c.ts',
    '8 import ./ns.ts',
    '9 side-effect ./side.ts',
    '10 import ./default-named-type.ts',
    '11 import ioredis',
    '12 export ./star.ts',
    '13 export ./star-ns.ts',
    '14 export ./named.ts',
    '18 export type ./types.ts',
    '21 dynamic ./lazy.ts',
    '22 dynamic ./tpl.ts',
    '24 dynamic ./query.ts',
    '33 dynamic ./in-function.ts',
  ]);
});

test('scanner: refuses a source it cannot tokenize instead of missing its imports', () => {
  assert.throws(() => scanImports("import a from './a.ts';\nconst s = 'unterminated"), /unterminated string at line 2/);
  assert.throws(() => scanImports('/* never closed'), /unterminated block comment/);
  assert.throws(() => scanImports('const t = `open ${x'), /unterminated/);
});

// ---------------------------------------------------------------------------------------------------------------
// The checker, on a fake tree with one violation of each kind
// ---------------------------------------------------------------------------------------------------------------

const fakeRoot = mkdtempSync(join(tmpdir(), 'celeriac-layers-'));
after(() => rmSync(fakeRoot, { recursive: true, force: true }));

const FAKE_TREE: Record<string, string> = {
  'common/errors.ts': 'export const e = 1;',
  'common/bad.ts': "import type { P } from '../protocol/ok.ts';\nexport type Q = P;", // rules 2 and 4
  'protocol/ok.ts': "import { e } from '../common/errors.ts';\nimport { own } from './own.ts';\nexport type P = number;",
  'protocol/own.ts': 'export const own = 1;',
  'protocol/a.ts': "import { b } from '../broker/b.ts';\nexport const a = b;", // rules 2 and 4
  'stores/redis/conn.ts': "import { e } from '../../common/errors.ts';\nexport const conn = e;",
  'stores/sqlite/db.ts': "export * from '../redis/conn.ts';", // rule 3: sibling store
  'broker/b.ts': 'export const b = 1;',
  'broker/broker.ts': "import type { P } from '../protocol/ok.ts';\nexport interface Broker { p: P }",
  'broker/registry.ts': "export const load = () => import('./memory/memory-broker.ts');",
  'broker/memory/memory-broker.ts': "import type { Broker } from '../broker.ts';\nexport type M = Broker;",
  'broker/redis/redis-broker.ts': [
    "import type { Broker } from '../broker.ts';",
    "import { conn } from '../../stores/redis/conn.ts';",
    "import {",
    "  e,",
    "} from '../../stores/sqlite/db.ts';", // rule 3: another implementation's store
    "export const lazy = () => import('../memory/memory-broker.ts');", // rule 3: sibling implementation
  ].join('\n'),
  'backend/backend.ts': "import type { P } from '../protocol/ok.ts';\nexport interface Backend { p: P }",
  'backend/sqlite/sqlite-backend.ts': [
    "import type { Backend } from '../backend.ts';",
    "import { e } from '../../stores/sqlite/db.ts';",
    "import type { Broker } from '../../broker/broker.ts';", // rules 2 (peers) and 3 (backend → broker)
  ].join('\n'),
  'task/cycle-a.ts': "import type { B } from './cycle-b.ts';\nexport type A = B;", // rule 1
  'task/cycle-b.ts': "export { type A as B } from './cycle-a.ts';", // rule 1
  'task/self.ts': "export * from './self.ts';", // rule 1: a file importing itself
  'app/app.ts': "import { Broker } from '../broker/broker.ts';\nimport { w } from '../worker/worker.ts';", // rule 2: above
  'worker/worker.ts': "import { beat } from '../beat/beat.ts';\nexport const w = 1;", // rule 2: peers
  'beat/beat.ts': "import { e } from '../common/errors.ts';\nexport const beat = e;",
  'control/control.ts': [
    "// import '../cli/main.ts';",
    "const s = \"import '../cli/main.ts'\";",
    "import type { App } from '../app/app.ts';",
  ].join('\n'),
  'cli/main.ts': "import { w } from '../worker/worker.ts';\nimport { c } from '../control/control.ts';",
  'index.ts': "export * from './app/app.ts';\nexport { main } from './cli/main.ts';", // rule 2: nothing imports cli
  'testing.ts': "import { w } from './worker/worker.ts';",
  'stray/x.ts': "import { gone } from '../common/missing.ts';", // in no layer, and an unresolved import
};

function fakeGraph(): ImportGraph {
  for (const [path, text] of Object.entries(FAKE_TREE)) {
    mkdirSync(dirname(join(fakeRoot, path)), { recursive: true });
    writeFileSync(join(fakeRoot, path), text + '\n');
  }
  return importGraph(fakeRoot);
}

test('checker on a fake tree: reports files in no layer and imports that resolve to no file', () => {
  assertReports(unplacedFilesAndUnresolvedImports(fakeGraph()), [
    'stray/x.ts belongs to no layer',
    "stray/x.ts:1 import … from '../common/missing.ts' resolves to no .ts file",
  ]);
});

test('checker on a fake tree: rule 1 reports each cycle as its list of files', () => {
  const graph = fakeGraph();
  assert.deepEqual(importCycles(graph), [
    ['task/cycle-a.ts', 'task/cycle-b.ts', 'task/cycle-a.ts'],
    ['task/self.ts', 'task/self.ts'],
  ]);
  assertReports(cycleViolations(graph), [
    'import cycle: task/cycle-a.ts → task/cycle-b.ts → task/cycle-a.ts (rule 1',
    'import cycle: task/self.ts → task/self.ts (rule 1',
  ]);
});

test('checker on a fake tree: rule 2 reports imports against the layer order', () => {
  assertReports(layerOrderViolations(fakeGraph()), [
    "common/bad.ts:1 import … from '../protocol/ok.ts' (type-only) → protocol/ok.ts: common must not import protocol, a layer above it (rule 2",
    "protocol/a.ts:1 import … from '../broker/b.ts' → broker/b.ts: protocol must not import broker, a layer above it (rule 2",
    "backend/sqlite/sqlite-backend.ts:3 import … from '../../broker/broker.ts' (type-only) → broker/broker.ts: backend and broker are peers",
    "app/app.ts:2 import … from '../worker/worker.ts' → worker/worker.ts: app must not import worker, a layer above it",
    "worker/worker.ts:1 import … from '../beat/beat.ts' → beat/beat.ts: worker and beat are peers",
    "index.ts:2 export … from './cli/main.ts' → cli/main.ts: nothing imports cli",
  ]);
});

test('checker on a fake tree: rule 3 reports implementations importing sibling implementations, and backends importing broker/', () => {
  assertReports(implementationViolations(fakeGraph()), [
    "stores/sqlite/db.ts:1 export … from '../redis/conn.ts' → stores/redis/conn.ts: stores/sqlite must not import its sibling implementation stores/redis",
    "broker/redis/redis-broker.ts:3 import … from '../../stores/sqlite/db.ts' → stores/sqlite/db.ts: broker/redis may use only stores/redis, not stores/sqlite",
    "broker/redis/redis-broker.ts:6 import('../memory/memory-broker.ts') → broker/memory/memory-broker.ts: broker/redis must not import its sibling implementation broker/memory",
    "backend/sqlite/sqlite-backend.ts:3 import … from '../../broker/broker.ts' (type-only) → broker/broker.ts: backends never import from broker/",
  ]);
});

test('checker on a fake tree: rule 4 reports common importing anything internal and protocol importing beyond common', () => {
  assertReports(foundationViolations(fakeGraph()), [
    "common/bad.ts:1 import … from '../protocol/ok.ts' (type-only) → protocol/ok.ts: common imports nothing internal outside common (rule 4)",
    "protocol/a.ts:1 import … from '../broker/b.ts' → broker/b.ts: protocol imports only common (and protocol) (rule 4)",
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// The real src/
// ---------------------------------------------------------------------------------------------------------------

const srcGraph = (() => {
  let graph: ImportGraph | undefined;
  return () => (graph ??= importGraph(SRC));
})();

test('src/: every file lies in a layer and every relative import resolves to a .ts file in src/', () => {
  const graph = srcGraph();
  assert.ok(graph.files.length > 50 && graph.edges.length > 200, `scanned only ${graph.files.length} files and ${graph.edges.length} imports`);
  assertNone('layer map', unplacedFilesAndUnresolvedImports(graph, 'src/'));
});

test('src/ rule 1: no import cycle between files (type-only and dynamic imports included)', () => {
  assertNone('rule 1 (no import cycles)', cycleViolations(srcGraph(), 'src/'));
});

test('src/ rule 2: each layer imports only itself and the layers below it; peers never import each other; nothing imports cli', () => {
  assertNone('rule 2 (layer order)', layerOrderViolations(srcGraph(), 'src/'));
});

test('src/ rule 3: no implementation imports a sibling implementation; backends never import broker/', () => {
  assertNone('rule 3 (implementations stay apart)', implementationViolations(srcGraph(), 'src/'));
});

test('src/ rule 4: common imports nothing internal; protocol imports only common', () => {
  assertNone('rule 4 (foundation layers)', foundationViolations(srcGraph(), 'src/'));
});
