// A stalled connection (issue "Nothing silent", item 5): TCP stays open but nothing comes back. Every producer
// call is bounded (5 s by default, `?socket_timeout=` in the URL) and fails with E_CONNECTION naming the URL;
// after the stall the same app works again, and a worker rides out the stall and resumes consuming by itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, CeleriacError, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { quietLogger } from '../helpers/logs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The documented default bound (docs/defaults.md), with room for a slow CI machine. */
const BOUND_MS = 5000;

describe('a stalled connection to Redis', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.dispose();
  });

  test('delay() during a 20 s stall fails within the bound with E_CONNECTION; after resume the app works', async () => {
    proxy = await TcpProxy.start(redis.port);
    const app = new Celeriac('stall', { broker: proxy.url(0), backend: redis.url(1) });
    const add = app.task('stall.add', (a: number, b: number) => a + b);
    try {
      await add.delay(1, 1); // connected, and the first publish done
      proxy.stall();
      const resumeAt = setTimeout(() => proxy.resume(), 20_000);
      const t0 = Date.now();
      const err = await add.delay(2, 2).then(() => null, (e: unknown) => e);
      const took = Date.now() - t0;
      console.log(`delay() failed after ${took} ms of the stall: ${(err as Error)?.message}`);
      assert.ok(err instanceof CeleriacError, `expected a CeleriacError, got ${err}`);
      assert.equal(err.code, 'E_CONNECTION');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${proxy.port}`));
      assert.match(err.message, /no reply/);
      assert.ok(took <= BOUND_MS + 1500, `took ${took} ms`);
      clearTimeout(resumeAt);
      proxy.resume();
      await sleep(200);
      const res = await add.delay(3, 4);
      assert.ok(res.id);
      assert.ok((await redis.client(0).llen('celery')) >= 2);
    } finally {
      await app.close();
      await proxy.close();
    }
  });

  test('a worker survives a stall and resumes consuming by itself', async () => {
    await redis.flush();
    proxy = await TcpProxy.start(redis.port);
    const app = new Celeriac('stall', { broker: proxy.url(0), backend: proxy.url(1) });
    const add = app.task('stall.add', (a: number, b: number) => a + b);
    const lines: string[] = [];
    const worker = new Worker(app, { logger: quietLogger(lines), concurrency: 2 });
    const producer = new Celeriac('stall', { broker: redis.url(0), backend: redis.url(1) });
    const padd = producer.task('stall.add', (a: number, b: number) => a + b);
    try {
      await worker.start();
      assert.equal(await (await padd.delay(1, 2)).get({ timeout: 10_000 }), 3);
      proxy.stall();
      await sleep(8_000);
      const during = await padd.delay(5, 6); // sent around the proxy while the worker's connections are stalled
      await sleep(500);
      proxy.resume();
      assert.equal(await during.get({ timeout: 15_000 }), 11);
      assert.equal(await (await padd.delay(7, 8)).get({ timeout: 10_000 }), 15);
      assert.equal(worker.state, 'running');
      console.log(lines.filter((l) => /warn|error/i.test(l)).slice(0, 5).join('\n'));
    } finally {
      await worker.stop();
      await app.close();
      await producer.close();
      await proxy.close();
    }
  });
});
