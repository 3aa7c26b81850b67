#!/usr/bin/env node
// `npm run build`: src/ -> dist/ (ESM JavaScript, .d.ts, source maps) with tsc, plus the Lua scripts the Redis
// store reads at run time. dist/ is rebuilt from nothing each time so a deleted source leaves no stale output.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const copyAssets = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) copyAssets(path);
    else if (name.endsWith('.lua')) cpSync(path, join(dist, relative(src, path)));
  }
};
copyAssets(src);
