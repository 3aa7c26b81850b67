// Redis under maxmemory (issue "Nothing silent", items 2 and 3): an eviction policy that can drop queue keys is
// warned about by the worker, the producer and `celeriac status`; a full Redis (noeviction) gives E_BROKER_FULL,
// and a worker still starts on it, acknowledges (which frees memory) and keeps every task until there is room.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, CeleriacError, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { celeriac, exec } from '../helpers/processes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('an eviction policy that can drop queued tasks', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
  });
  after(async () => {
    await redis.dispose();
  });

  test('the worker logs a warning at start that names the policy and the fix', async () => {
    const app = new Celeriac('evict', { broker: redis.url(0) });
    const lines: string[] = [];
    const worker = new Worker(app, { logger: quietLogger(lines) });
    await worker.start();
    try {
      const warning = lines.find((l) => /WARNING/.test(l) && /maxmemory-policy allkeys-lru/.test(l));
      assert.ok(warning, lines.join('\n'));
      assert.match(warning, /noeviction/);
      assert.match(warning, new RegExp(`127\\.0\\.0\\.1:${redis.port}`));
    } finally {
      await worker.stop();
      await app.close();
    }
  });

  test('a producer warns once (process warning E_EVICTION_POLICY) at its first publish', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const app = new Celeriac('evict', { broker: redis.url(2) });
    const add = app.task('evict.add', (a: number, b: number) => a + b);
    try {
      await add.delay(1, 2);
      await add.delay(3, 4);
      await sleep(50); // process warnings are emitted on the next tick
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'E_EVICTION_POLICY');
      assert.equal(ours.length, 1, warnings.map((w) => w.message).join('\n'));
      assert.match(ours[0].message, /allkeys-lru/);
    } finally {
      process.off('warning', onWarning);
      await app.close();
    }
  });

  test('celeriac status prints the warning (and lists it in --json)', async () => {
    const env = { CELERIAC_BROKER_URL: redis.url(3), CELERIAC_RESULT_BACKEND: redis.url(4) };
    const plain = await exec(celeriac(['-A', 'test/apps/basic', 'status'], env));
    assert.equal(plain.code, 1, plain.out); // no worker is alive
    assert.match(plain.out, /WARNING: .*maxmemory-policy allkeys-lru/);
    const json = await exec(celeriac(['-A', 'test/apps/basic', 'status', '--json'], env));
    const parsed = JSON.parse(json.out.trim().split('\n').filter((l) => l.startsWith('{')).pop() ?? '{}');
    assert.equal(parsed.warnings.length, 1, json.out);
    assert.match(parsed.warnings[0], /allkeys-lru/);
  });

  test('noeviction: no warning', async () => {
    await redis.client(0).config('SET', 'maxmemory-policy', 'noeviction');
    try {
      const app = new Celeriac('evict', { broker: redis.url(5) });
      const lines: string[] = [];
      const worker = new Worker(app, { logger: quietLogger(lines) });
      await worker.start();
      await worker.stop();
      await app.close();
      assert.ok(!lines.some((l) => /maxmemory-policy/.test(l)), lines.join('\n'));
    } finally {
      await redis.client(0).config('SET', 'maxmemory-policy', 'allkeys-lru');
    }
  });
});

describe('a full Redis (noeviction)', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis({ args: ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'] });
  });
  after(async () => {
    await redis.dispose();
  });

  /**
   * Small keys until Redis refuses a write, then a limit a little under what is used, so that Redis stays over it
   * whatever buffers come and go (the filler keys are in db 9; flushing it makes room again).
   */
  async function fill(): Promise<void> {
    const c = redis.client(9);
    for (let n = 0; ; n++) {
      try {
        await c.set(`filler:${n}`, 'x'.repeat(1000));
      } catch (err) {
        assert.match((err as Error).message, /OOM/);
        break;
      }
    }
    const used = Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
    await c.config('SET', 'maxmemory', String(used - 256 * 1024));
  }
  async function makeRoom(): Promise<void> {
    await redis.client(9).flushdb();
    await redis.client(9).config('SET', 'maxmemory', '4mb');
  }

  test('delay() rejects with E_BROKER_FULL; celeriac call prints the code', async () => {
    await redis.flush();
    const app = new Celeriac('full', { broker: redis.url(0), backend: redis.url(1) });
    const add = app.task('basic.add', (a: number, b: number) => a + b);
    try {
      await add.delay(0, 0);
      await fill();
      const err = await add.delay(1, 2).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof CeleriacError, `expected a CeleriacError, got ${err}`);
      assert.equal(err.code, 'E_BROKER_FULL');
      assert.match(err.message, /is full/);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${redis.port}`));
      const cli = await exec(celeriac(['-A', 'test/apps/basic', 'call', 'basic.add', '1', '2'],
        { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) }));
      assert.notEqual(cli.code, 0);
      assert.match(cli.out, /\[E_BROKER_FULL\]/);
    } finally {
      await makeRoom();
      await app.close();
    }
  });

  test('a worker starts on a full Redis, acks what needs no result, keeps the rest until there is room', async () => {
    await redis.flush();
    const app = new Celeriac('full', { broker: redis.url(0), backend: redis.url(1), brokerTransportOptions: { leaseTimeout: 2 } });
    const quiet = app.task('full.quiet', (n: number) => n, { ignoreResult: true });
    const slow = app.task('full.slow', async (n: number) => {
      await sleep(5000); // longer than two leases: renewals must go on while Redis is full
      return n;
    }, { ignoreResult: true });
    const add = app.task('full.add', (a: number, b: number) => a + b);
    for (let i = 0; i < 20; i++) await quiet.delay(i);
    const slowResult = await slow.delay(7);
    const sums = [];
    for (let i = 0; i < 5; i++) sums.push(await add.delay(i, 100));
    await fill();
    const c0 = redis.client(0);
    const lines: string[] = [];
    const worker = new Worker(app, { logger: quietLogger(lines), concurrency: 4 });
    await worker.start();
    try {
      assert.equal(worker.state, 'running');
      // the tasks without results are acknowledged: nothing of theirs stays reserved
      await until('the queue to drain', async () => (await c0.llen('celery')) === 0);
      await until('the results-free tasks to be acknowledged', async () => (await c0.hlen('unacked')) <= 5 + 1, 20_000);
      await sleep(6000); // the slow task finishes past two leases; its message must not be run again
      assert.ok(!lines.some((l) => /Cannot renew/.test(l)), lines.filter((l) => /renew/.test(l)).join('\n'));
      // the five results cannot be written: they wait, reserved, with the reason in the log
      assert.equal(await c0.hlen('unacked'), 5, 'the tasks with results stay reserved until they can be stored\n' + lines.filter((l) => !/quiet/.test(l)).join('\n'));
      assert.ok(lines.some((l) => /Cannot store results/.test(l) && /is full/.test(l)), lines.slice(-5).join('\n'));
      // room again: every result arrives, nothing was lost
      await makeRoom();
      for (let i = 0; i < 5; i++) assert.equal(await sums[i].get({ timeout: 15_000 }), i + 100);
      await until('everything to be acknowledged', async () => (await c0.hlen('unacked')) === 0);
      const starts = lines.filter((l) => l.includes(`[${slowResult.id}] received`)).length;
      assert.equal(starts, 1, 'the slow task was received once');
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
