// Global rate limits (a task's rateLimit, Celery's syntax) with two worker processes on one broker, on Redis and
// on the SQLite default: the limit holds across both workers, and other tasks on the same workers are not slowed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, type Proc } from '../helpers/processes.ts';
import { quietLogger } from '../helpers/logs.ts';

function starts(log: string): number[] {
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.startsWith('limited ')).map((l) => Number(l.split(' ')[1]));
}

async function run(broker: string, backend: string, dir: string): Promise<void> {
  const log = join(dir, 'runs.log');
  const env = { CELERIAC_BROKER_URL: broker, CELERIAC_RESULT_BACKEND: backend, TEST_RUN_LOG: log, TEST_RATE: '20/s' };
  const workers: Proc[] = [];
  const app = new Celeriac('basic', { broker, backend });
  const limited = app.task('basic.limited', (n: number) => n);
  const add = app.task('basic.add', (a: number, b: number) => a + b);
  try {
    for (const name of ['rl1@%h', 'rl2@%h']) {
      const w = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-n', name, '-c', '10'], env);
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.waitFor(' ready.', 60_000)));
    const t0 = Date.now();
    const results = await limited.applyMany(Array.from({ length: 200 }, (_, i) => [i] as [number]));
    // other tasks sent behind 200 rate-limited ones still run at once on the same workers
    await new Promise((r) => setTimeout(r, 500));
    const others = await add.applyMany(Array.from({ length: 20 }, (_, i) => [i, 1] as [number, number]));
    const otherValues = await Promise.all(others.map((r) => r.get({ timeout: 30_000 })));
    const othersDoneAt = Date.now();
    assert.deepEqual(otherValues, Array.from({ length: 20 }, (_, i) => i + 1));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60_000 })));
    assert.deepEqual(values, Array.from({ length: 200 }, (_, i) => i));
    const s = starts(log).sort((a, b) => a - b);
    assert.equal(s.length, 200, 'each ran once');
    const span = s[s.length - 1] - s[0];
    console.log(`200 tasks at 20/s over two workers: ${span} ms from first to last start; the other 20 tasks done ` +
      `${othersDoneAt - t0} ms after sending; busiest second: ${busiest(s)} starts`);
    assert.ok(span >= 9000, `the limit is global: 200 at 20/s take >= 9 s, took ${span} ms`);
    assert.ok(othersDoneAt < s[s.length - 1], 'the other tasks finished while rate-limited ones still waited');
    assert.ok(busiest(s) <= 22, `no second saw more than the rate (+ one turn at each edge): ${busiest(s)}`);
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    await app.close();
  }
}

/** The most starts inside any window of one second. */
function busiest(s: number[]): number {
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i] - s[j] >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('global rate limits', () => {
  let redis: RedisServer;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'celeriac-rate-'));
  });
  after(async () => {
    await redis.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test('rateLimit 20/s, 200 calls, two worker processes on Redis: >= 9 s, other tasks not slowed', async () => {
    await run(redis.url(0), redis.url(1), mkdtempSync(join(dir, 'redis-')));
  });

  test('the same on the SQLite default', async () => {
    const d = mkdtempSync(join(dir, 'sqlite-'));
    const url = `sqlite://${join(d, 'celeriac.db')}`;
    await run(url, url, d);
  });

  test('setRateLimit() changes a rate at run time; null lifts it', async () => {
    const app = new Celeriac('rl', { broker: `memory://rl-${process.pid}` });
    const seen: number[] = [];
    const t = app.task('rl.t', () => {
      seen.push(Date.now());
    }, { rateLimit: '1/h' });
    const worker = new Worker(app, { logger: quietLogger() });
    await worker.start();
    try {
      const first = await t.applyMany([[], [], []]);
      await first[0].get({ timeout: 5000 });
      assert.equal(seen.length, 1, 'one per hour: one runs');
      assert.equal(worker.setRateLimit('rl.t', null), true);
      assert.equal(worker.setRateLimit('no.such.task', '1/s'), false);
      // the two waiting ones ask again within RATE_RECHECK_MS (10 s) and now run
      await Promise.all(first.map((r) => r.get({ timeout: 20_000 })));
      assert.equal(seen.length, 3);
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
