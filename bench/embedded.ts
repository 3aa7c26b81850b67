/**
 * The embedded row of the benchmark: N no-op tasks pre-enqueued in one SQLite file, drained by two worker processes
 * sharing it (results stored in the same file); timed from the first stored result to the last.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Celeriac } from 'celeriac';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export async function embeddedDrain(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-bench-'));
  const url = `sqlite:///${join(dir, 'bench.db')}`;
  const app = new Celeriac('bench-embedded', { broker: url, backend: url });
  const noop = app.task('bench.noop', (x: number) => x);
  await app.backend(); // creates the results table the count below reads
  for (let i = 0; i < n; i += 1000) {
    await noop.applyMany(Array.from({ length: Math.min(1000, n - i) }, (_, k) => [i + k] as [number]));
  }
  const env = { ...process.env, CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url };
  const workers = [0, 1].map((i) => spawn(`${ROOT}bin/celeriac`, ['-A', `${ROOT}bench/app.mjs`, 'worker',
    '-c', '50', '-n', `embedded${i}@%h`, '-l', 'warning'], { env, stdio: ['ignore', 'ignore', 'inherit'] }));
  const db = new Database(join(dir, 'bench.db'), { readonly: true });
  const count = db.prepare('SELECT COUNT(*) AS n FROM celeriac_results');
  const finished = () => (count.get() as { n: number }).n;
  try {
    return await timeDrain(n, finished);
  } finally {
    db.close();
    await Promise.all(workers.map((w) => new Promise((resolve) => {
      if (w.exitCode !== null) return resolve(null);
      w.once('exit', resolve);
      w.kill('SIGTERM');
    })));
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timeDrain(n: number, finished: () => number): Promise<number> {
  let first = 0;
  let firstCount = 0;
  const deadline = Date.now() + 300_000;
  for (;;) {
    const done = finished();
    if (!first && done > 0) {
      first = performance.now();
      firstCount = done;
    }
    if (done >= n || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return (n - firstCount) / ((performance.now() - first) / 1000);
}
