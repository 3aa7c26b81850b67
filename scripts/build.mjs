#!/usr/bin/env node
// `npm run build`: src/ -> dist/ (ESM JavaScript, .d.ts, source maps) with tsc, plus the Lua scripts the Redis
// store reads at run time. The output is built in a fresh directory and swapped in with two renames, so a deleted
// source leaves no stale file behind and a process starting meanwhile never finds dist/ half-written or missing.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const fresh = mkdtempSync(join(root, '.dist-'));

try {
  const tsc = spawnSync(process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', fresh],
    { stdio: 'inherit' });
  if (tsc.status !== 0) throw Object.assign(new Error('tsc failed'), { exitCode: tsc.status ?? 1 });
  const copyAssets = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) copyAssets(path);
      else if (name.endsWith('.lua')) cpSync(path, join(fresh, relative(src, path)));
    }
  };
  copyAssets(src);
  const old = `${fresh}.old`;
  try {
    renameSync(dist, old);
  } catch {
    // no previous build
  }
  renameSync(fresh, dist);
  rmSync(old, { recursive: true, force: true });
} catch (err) {
  rmSync(fresh, { recursive: true, force: true });
  if (err.exitCode) process.exit(err.exitCode);
  throw err;
}
