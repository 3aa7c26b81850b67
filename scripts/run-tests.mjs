#!/usr/bin/env node
// `npm test`: check that the machine has what the tests use, build dist/ (the CLI the tests start is the compiled
// one, as users run it), type-check, then every test/**/*.test.ts under node's test runner.
// Node 20's runner takes no globs, so the files are listed here; `npm test -- <substring>` runs the matching ones
// (and skips the machine check and the type check).
// The test processes resolve `celeriac` to src/ (the "celeriac-source" export condition); processes they start
// through bin/celeriac run dist/.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const filter = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts') && (filter.length === 0 || filter.some((f) => path.includes(f)))) files.push(path);
  }
};
walk('test');

function onPath(cmd) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What the full suite starts for real, each with the Debian package that provides it. */
function missingTools() {
  const missing = [];
  if (!onPath('redis-server')) missing.push(['redis-server (integration, contract and interop tests)', 'redis-server']);
  const py = spawnSync('/usr/bin/python3', ['-c', 'import celery, redis'], { stdio: 'ignore' });
  if (py.status !== 0) missing.push(['Python Celery at /usr/bin/python3 (interop tests)', 'python3-celery python3-redis']);
  try {
    accessSync('/usr/bin/chromium', constants.X_OK);
  } catch {
    missing.push(['/usr/bin/chromium (browser tests)', 'chromium']);
  }
  return missing;
}

if (filter.length === 0) {
  const missing = missingTools();
  if (missing.length > 0) {
    console.error('npm test cannot run here: missing ' + missing.map(([what]) => what).join('; ') + '.');
    console.error('Install everything the tests need with:  bash .ci/run   (or: sudo apt-get install ' +
      missing.map(([, pkg]) => pkg).join(' ') + ')');
    process.exit(1);
  }
}

const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('build failed');
  process.exit(build.status ?? 1);
}

if (filter.length === 0) {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
  if (tsc.status !== 0) {
    console.error('type check failed');
    process.exit(tsc.status ?? 1);
  }
}

const run = spawnSync(process.execPath, [
  '--conditions=celeriac-source', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000', ...files,
], { stdio: 'inherit' });
process.exit(run.status ?? 1);
