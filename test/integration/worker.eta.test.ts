// Durable ETA/countdown: future messages are parked in Redis (not held under a ticking reservation) and come back
// exactly once when due — across worker restarts, short visibility timeouts and a Redis restart with AOF.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, TaskRevokedError, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';

let redis: RedisServer;
const cleanup: Array<() => Promise<void>> = [];

before(async () => {
  redis = await startRedis({ aof: true });
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis.flush();
});

function makeApp() {
  const app = new Celeriac('eta', {
    broker: redis.url(0), backend: redis.url(1),
    brokerTransportOptions: { visibilityTimeout: 2, leaseTimeout: 2 },
  });
  const runs: Array<{ id: string; at: number; eta: number | null; tag: unknown }> = [];
  const t = app.task('eta.mark', function (this: TaskContext, tag: unknown) {
    runs.push({ id: this.request.id, at: Date.now(), eta: this.request.eta?.getTime() ?? null, tag });
    return tag;
  });
  cleanup.push(() => app.close());
  return { app, t, runs };
}

async function startWorker(app: Celeriac) {
  const w = new Worker(app, { logger: quietLogger() });
  await w.start();
  cleanup.push(() => w.stop());
  return w;
}

test('countdown beyond the visibility timeout runs once, on time, and is parked (not reserved) meanwhile', async () => {
  const { app, t, runs } = makeApp();
  await startWorker(app);
  const sent = Date.now();
  const res = await t.applyAsync(['six'], {}, { countdown: 6 });
  const c0 = redis.client(0);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await c0.zcard('celeriac.eta'), 1, 'parked in celeriac.eta');
  assert.equal(await c0.hlen('unacked'), 0, 'no reservation is held while it waits');
  assert.equal(await res.get({ timeout: 15_000 }), 'six');
  assert.equal(runs.length, 1);
  assert.ok(runs[0].at - sent >= 6000, `ran after ${runs[0].at - sent} ms`);
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(runs.length, 1, 'no second run after the visibility timeout');
});

test('a worker restarted while a task is parked does not lose it', async () => {
  const { app, t, runs } = makeApp();
  const w1 = new Worker(app, { logger: quietLogger() });
  await w1.start();
  const res = await t.applyAsync(['restart'], {}, { countdown: 3 });
  await new Promise((r) => setTimeout(r, 1200));
  await w1.stop();
  await new Promise((r) => setTimeout(r, 500));
  await startWorker(app);
  assert.equal(await res.get({ timeout: 15_000 }), 'restart');
  assert.equal(runs.length, 1);
});

test('1,000 tasks with random countdowns 0–5 s each run exactly once, none early', async () => {
  const { app, t, runs } = makeApp();
  await startWorker(app);
  const n = 1000;
  const due = new Map<string, number>();
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    const countdown = Math.random() * 5;
    const dueAt = Date.now() + countdown * 1000;
    const r = await t.applyAsync([i], {}, { countdown });
    due.set(r.id, dueAt);
  }));
  const deadline = Date.now() + 30_000;
  while (runs.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(runs.length, n, 'every task ran');
  assert.equal(new Set(runs.map((r) => r.id)).size, n, 'none ran twice');
  const early = runs.filter((r) => r.at < (r.eta ?? 0));
  assert.equal(early.length, 0, `ran early: ${early.length}`);
  for (const r of runs) assert.ok(r.at >= due.get(r.id)! - 5, 'not before the countdown asked by the caller');
});

test('expires wins over a later ETA: REVOKED, never run', async () => {
  const { app, t, runs } = makeApp();
  await startWorker(app);
  const res = await t.applyAsync(['late'], {}, { countdown: 2, expires: 1 });
  await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
  assert.equal(runs.length, 0);
});

test('retry({ countdown }) waits parked in Redis, not in the worker', async () => {
  const app = new Celeriac('eta2', { broker: redis.url(0), backend: redis.url(1) });
  cleanup.push(() => app.close());
  let runs = 0;
  const t = app.task('eta.retry', function (this: TaskContext) {
    runs++;
    if (this.request.retries === 0) throw this.retry({ countdown: 2 });
    return this.request.retries;
  });
  const w = await startWorker(app);
  const res = await t.delay();
  const c0 = redis.client(0);
  while (runs === 0) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await c0.zcard('celeriac.eta'), 1);
  assert.equal(w.size.reserved, 0);
  assert.equal(await res.get({ timeout: 10_000 }), 1);
});

test('parked tasks survive a Redis restart (AOF) and the worker resumes consuming afterwards', async () => {
  const { app, t, runs } = makeApp();
  await startWorker(app);
  const parked = await t.applyAsync(['after-restart'], {}, { countdown: 4 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await redis.client(0).zcard('celeriac.eta'), 1);
  await redis.restart();
  assert.equal(await parked.get({ timeout: 20_000 }), 'after-restart');
  const fresh = await t.delay('fresh');
  assert.equal(await fresh.get({ timeout: 20_000 }), 'fresh', 'new tasks run after the restart');
  assert.equal(runs.filter((r) => r.tag === 'after-restart').length, 1);
});
