/**
 * The package as users get it: `npm pack`, installed into a fresh project in a temporary directory (no link to this
 * checkout), then used from plain ESM JavaScript, from CommonJS `require`, from a strict TypeScript consumer in each
 * module resolution mode, and through `npx celeriac` (worker, call, SIGTERM to npx) with a .mjs and a .ts app.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, ROOT, exec } from '../helpers/processes.ts';

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
let dir = '';
let tarball = '';
let files: string[] = [];

function sh(cmd: string, args: string[], cwd = dir, timeout = 300_000): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
}

/** The environment of a user's shell: none of this repository's test flags (conditions, loaders). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  for (const k of Object.keys(env)) if (k.startsWith('CELERIAC_') || k.startsWith('npm_')) delete env[k];
  return env;
}

function node(args: string[], timeout = 60_000): string {
  return sh(process.execPath, args, dir, timeout);
}

function write(name: string, text: string): void {
  writeFileSync(join(dir, name), text);
}

const TASKS_MJS = `import { Celeriac } from 'celeriac';
export const app = new Celeriac('pkgtest', { broker: process.env.PKG_BROKER, backend: process.env.PKG_BROKER });
export const add = app.task('pkgtest.add', (a, b) => a + b);
`;

const TASKS_TS = `import { Celeriac } from 'celeriac';
export const app = new Celeriac('pkgtest', { broker: process.env.PKG_BROKER, backend: process.env.PKG_BROKER });
export const add = app.task('pkgtest.add', (a: number, b: number): number => a + b);
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'celeriac-pkg-'));
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', dir], ROOT)) as
    Array<{ filename: string; files: Array<{ path: string }>; size: number; unpackedSize: number }>;
  tarball = join(dir, packed[0].filename);
  files = packed[0].files.map((f) => f.path);
  console.log(`# tarball: ${files.length} files, ${(packed[0].size / 1024).toFixed(0)} kB packed, ` +
    `${(packed[0].unpackedSize / 1024).toFixed(0)} kB unpacked`);
  write('package.json', JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const started = Date.now();
  // @types/node and tsx are what a TypeScript user of Node has anyway; nothing else is installed for our types
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, '@types/node@20', 'tsx@4'], dir, 600_000);
  console.log(`# npm install of the tarball (with @types/node, tsx): ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, { timeout: 900_000 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the tarball', () => {
  test('ships dist/, bin/, README, LICENSE and CHANGELOG only: no sources, tests, examples, bench or screenshots', () => {
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('bin/celeriac'));
    assert.ok(files.includes('dist/broker/redis/lua/reserve.lua'), 'the Lua scripts the Redis broker reads at run time');
    for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) assert.ok(files.includes(f), f);
    const stray = files.filter((f) => !/^(dist\/|bin\/|README\.md$|LICENSE$|CHANGELOG\.md$|package\.json$)/.test(f));
    assert.deepEqual(stray, []);
    assert.ok(!files.some((f) => /\.test\.|\.png$|^src\//.test(f)));
  });

  test('the installed package needs no TypeScript at run time: tsx is an optional peer, not a dependency', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules/celeriac/package.json'), 'utf8'));
    assert.equal(pkg.dependencies.tsx, undefined);
    assert.equal(pkg.peerDependenciesMeta?.tsx?.optional, true);
    assert.ok(existsSync(join(dir, 'node_modules/better-sqlite3')), 'the SQLite driver installs when it can');
  });
});

describe('used from JavaScript', () => {
  test('plain ESM: a task on memory:// and on the default SQLite file, a Worker, delay() then get()', () => {
    write('esm.mjs', `import { Celeriac, Worker, createLogger } from 'celeriac';
for (const url of ['memory://pkg', undefined]) {
  const app = new Celeriac('esm', url ? { broker: url, backend: url } : {});
  const add = app.task('esm.add', (a, b) => a + b);
  const worker = new Worker(app, { logger: createLogger({ level: 'error' }) });
  await worker.start();
  const res = await add.delay(5, 6);
  console.log(url ?? 'default', await res.get({ timeout: 10000 }));
  await worker.stop();
  await app.close();
}
`);
    const out = node(['esm.mjs']);
    assert.match(out, /memory:\/\/pkg 11/);
    assert.match(out, /default 11/);
    assert.ok(existsSync(join(dir, '.celeriac/celeriac.db')), 'the default SQLite file, relative to the working directory');
  });

  test('CommonJS: require("celeriac") and require("celeriac/testing")', () => {
    write('cjs.cjs', `const { Celeriac, ErrorCode } = require('celeriac');
const { memoryApp, withWorker } = require('celeriac/testing');
(async () => {
  const app = memoryApp('cjs');
  const mul = app.task('cjs.mul', (a, b) => a * b);
  const value = await withWorker(app, async () => (await mul.delay(6, 7)).get({ timeout: 10000 }));
  console.log(typeof Celeriac, ErrorCode.Timeout, value);
  await app.close();
})();
`);
    assert.match(node(['cjs.cjs']), /function E_TIMEOUT 42/);
  });
});

describe('used from a strict TypeScript consumer', () => {
  const CONSUMER = `import { Celeriac, Worker, crontab, every, type TaskContext, type AsyncResult } from 'celeriac';
import { memoryApp } from 'celeriac/testing';
export const app = new Celeriac('ts', { broker: 'memory://ts', beatSchedule: {
  tick: { task: 'ts.add', schedule: every({ seconds: 10 }), args: [1, 2] },
  nightly: { task: 'ts.add', schedule: crontab({ hour: 3, minute: 0 }), args: [3, 4] },
} });
export const add = app.task('ts.add', async (a: number, b: number) => a + b);
export const ctx = app.task('ts.ctx', async function (this: TaskContext, n: number) { return this.request.id + n; });
export async function use(): Promise<number> {
  const r: AsyncResult<number> = await add.delay(1, 2);
  // @ts-expect-error a string is not a number
  await add.delay('x', 2);
  // @ts-expect-error too few arguments
  await add.delay(1);
  const w = new Worker(memoryApp(), { concurrency: 2 });
  void w;
  const v: number = await r.get({ timeout: 1000 });
  return v;
}
`;
  const STRICT = {
    strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true, noImplicitOverride: true, noEmit: true, skipLibCheck: false,
    types: ['node'], target: 'es2022',
  };
  for (const [resolution, module] of [['node16', 'node16'], ['nodenext', 'nodenext'], ['bundler', 'esnext']]) {
    test(`tsc with moduleResolution ${resolution}, every strict flag, no skipLibCheck: clean, and bad calls refused`, () => {
      mkdirSync(join(dir, `ts-${resolution}`), { recursive: true });
      write(`ts-${resolution}/consumer.ts`, CONSUMER);
      write(`ts-${resolution}/tsconfig.json`, JSON.stringify({
        compilerOptions: { ...STRICT, module, moduleResolution: resolution }, files: ['consumer.ts'],
      }));
      try {
        node([TSC, '-p', `ts-${resolution}/tsconfig.json`], 120_000);
      } catch (err) {
        assert.fail(`tsc (${resolution}) failed:\n${(err as { stdout?: string }).stdout ?? ''}`);
      }
    });
  }

  test('an unused @ts-expect-error is an error: the checks above can fail', () => {
    mkdirSync(join(dir, 'ts-negative'), { recursive: true });
    write('ts-negative/consumer.ts', CONSUMER.replace("add.delay('x', 2)", 'add.delay(3, 2)'));
    write('ts-negative/tsconfig.json', JSON.stringify({
      compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['consumer.ts'],
    }));
    assert.throws(() => node([TSC, '-p', 'ts-negative/tsconfig.json'], 120_000),
      (err: { stdout?: string }) => /TS2578/.test(err.stdout ?? ''));
  });
});

describe('the CLI under npx', () => {
  test('npx celeriac --version', () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    assert.equal(sh('npx', ['--no-install', 'celeriac', '--version']).trim(), version);
  });

  for (const [file, text] of [['tasks.mjs', TASKS_MJS], ['tasks.ts', TASKS_TS]]) {
    test(`npx celeriac -A ./${file} worker; call … --wait prints 11; SIGTERM to npx stops the worker warmly`, async () => {
      write(file, text);
      const db = `sqlite://./${file}.db`;
      const env = { ...cleanEnv(), PKG_BROKER: db };
      const worker = new Proc(spawn('npx', ['--no-install', 'celeriac', '-A', `./${file}`, 'worker', '-l', 'info', '-n', `w-${file}@%h`],
        { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
      try {
        await worker.waitFor('ready.', 60_000);
        const call = await exec(new Proc(spawn('npx', ['--no-install', 'celeriac', '-A', `./${file}`, 'call', 'pkgtest.add', '5', '6',
          '--wait', '--timeout', '30'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })), 60_000);
        assert.equal(call.code, 0, call.out);
        assert.equal(call.out.trim(), '11');
        const status = await exec(new Proc(spawn('npx', ['--no-install', 'celeriac', '-b', db, 'status', '-d', `w-${file}@${hostname()}`],
          { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })), 60_000);
        assert.equal(status.code, 0, status.out);
        worker.kill('SIGTERM');
        await worker.exited;
        // npm forwards SIGTERM to its `sh -c` only; the worker sees its parent go and shuts down warmly by itself
        const until = Date.now() + 30_000;
        let after = { code: 0 as number | null, out: '' };
        while (Date.now() < until) {
          after = await exec(new Proc(spawn('npx', ['--no-install', 'celeriac', '-b', db, 'status'],
            { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })), 60_000);
          if (after.code === 1 && /Warm shutdown/.test(worker.out)) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.match(worker.out, /Warm shutdown/, worker.out);
        assert.equal(after.code, 1, `no worker is left running: ${after.out}`);
      } finally {
        if (worker.child.exitCode === null) worker.kill('SIGKILL');
      }
    });
  }
});


describe('without the optional parts (tsx, better-sqlite3)', () => {
  test('a JavaScript app runs without tsx; a TypeScript app says E_TS_LOADER and how to fix it', () => {
    rmSync(join(dir, 'node_modules/tsx'), { recursive: true, force: true });
    write('nots.mjs', `import { memoryApp, withWorker } from 'celeriac/testing';
const app = memoryApp('nots');
const add = app.task('nots.add', (a, b) => a + b);
console.log(await withWorker(app, async () => (await add.delay(2, 3)).get({ timeout: 10000 })));
await app.close();
`);
    assert.equal(node(['nots.mjs']).trim(), '5');
    const tsRun = spawnResult('npx', ['--no-install', 'celeriac', '-A', './tasks.ts', 'worker']);
    assert.equal(tsRun.status, 1, tsRun.stderr);
    assert.match(tsRun.stderr, /E_TS_LOADER/);
    assert.match(tsRun.stderr, /npm install -D tsx/);
  });

  test('without the SQLite driver, memory:// works and sqlite:// fails with E_SQLITE_DRIVER naming the fix', () => {
    rmSync(join(dir, 'node_modules/better-sqlite3'), { recursive: true, force: true });
    const call = spawnResult('npx', ['--no-install', 'celeriac', 'call', 'x.y', '1']);
    assert.equal(call.status, 1, call.stderr);
    assert.match(call.stderr, /E_SQLITE_DRIVER/);
    assert.match(call.stderr, /npm install better-sqlite3@12/);
    write('nosqlite.mjs', `import { Celeriac } from 'celeriac';
const app = new Celeriac('m', { broker: 'memory://m', backend: 'memory://m' });
const r = await app.task('m.t', () => 1).delay();
console.log(await r.state());
await app.close();
`);
    assert.equal(node(['nosqlite.mjs']).trim(), 'PENDING');
  });
});

function spawnResult(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', timeout: 60_000, env: cleanEnv() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
