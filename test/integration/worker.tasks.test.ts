// A worker in this process against a real redis-server: results, failures, retries, routing, priorities, expiry.
import { closeAll } from '../helpers/lifecycle.ts';
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, TaskError, TaskRevokedError, NotJsonError, TimeoutError, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';

let redis: RedisServer;
const open: Array<{ stop(): Promise<void> } | Celeriac> = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  await closeAll(open);
  await redis.flush();
});

function makeApp(extra: ConstructorParameters<typeof Celeriac>[1] = {}) {
  const app = new Celeriac('t', { broker: redis.url(0), backend: redis.url(1), ...extra });
  open.push(app);
  return app;
}

async function startWorker(app: Celeriac, o: ConstructorParameters<typeof Worker>[1] = {}) {
  const w = new Worker(app, { logger: quietLogger(), ...o });
  await w.start();
  open.push(w);
  return w;
}

describe('results', () => {
  test('delay() then get() returns the value, and the record is Celery-shaped', async () => {
    const app = makeApp();
    const add = app.task('t.add', async (a: number, b: number) => a + b);
    await startWorker(app);
    const res = await add.delay(5, 6);
    assert.equal(await res.get({ timeout: 5000 }), 11);
    assert.equal(await res.state(), 'SUCCESS');
    assert.equal(await res.ready(), true);
    assert.equal(await res.successful(), true);
    const raw = await redis.client(1).get(`celery-task-meta-${res.id}`);
    const rec = JSON.parse(raw!);
    assert.deepEqual(Object.keys(rec), ['status', 'result', 'traceback', 'children', 'date_done', 'task_id']);
    assert.equal(rec.task_id, res.id);
    assert.match(rec.date_done, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const ttl = await redis.client(1).ttl(`celery-task-meta-${res.id}`);
    assert.ok(ttl > 86000 && ttl <= 86400, `ttl ${ttl}`);
  });

  test('get() waits for a task sent before the worker starts, through the result channel', async () => {
    const app = makeApp();
    const mul = app.task('t.mul', (a: number, b: number) => a * b);
    const res = await mul.delay(6, 7);
    assert.equal(await res.state(), 'PENDING');
    const waiting = res.get({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    await startWorker(app);
    assert.equal(await waiting, 42);
  });

  test('get() times out with a TimeoutError while nobody runs the task', async () => {
    const app = makeApp();
    const t = app.task('t.never', () => 1);
    const res = await t.delay();
    await assert.rejects(res.get({ timeout: 300 }), (e: unknown) => e instanceof TimeoutError && e.code === 'E_TIMEOUT');
  });

  test('a failure is rethrown with the remote type, message and traceback', async () => {
    const app = makeApp();
    const boom = app.task('t.boom', (msg: string) => {
      throw new TypeError(msg);
    });
    await startWorker(app);
    const res = await boom.delay('bad input');
    await assert.rejects(res.get({ timeout: 5000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError);
      assert.equal(e.excType, 'TypeError');
      assert.equal(e.excModule, 'builtins');
      assert.deepEqual(e.excMessage, ['bad input']);
      assert.match(e.remoteTraceback ?? '', /TypeError: bad input/);
      return true;
    });
    assert.equal(await res.state(), 'FAILURE');
    assert.equal(await res.failed(), true);
    assert.deepEqual(await res.info(), { exc_type: 'TypeError', exc_message: ['bad input'], exc_module: 'builtins' });
    assert.equal(await res.get({ timeout: 10_000, propagate: false }).then((v: any) => v.exc_type), 'TypeError');
  });

  test('forget() deletes the record', async () => {
    const app = makeApp();
    const t = app.task('t.one', () => 1);
    await startWorker(app);
    const res = await t.delay();
    await res.get({ timeout: 5000 });
    await res.forget();
    assert.equal(await res.state(), 'PENDING');
  });

  test('ignoreResult stores nothing', async () => {
    const app = makeApp();
    let ran = 0;
    const t = app.task('t.quiet', () => ++ran, { ignoreResult: true });
    const w = await startWorker(app);
    const res = await t.delay();
    while (ran === 0) await new Promise((r) => setTimeout(r, 20));
    await w.idle();
    assert.equal(await redis.client(1).exists(`celery-task-meta-${res.id}`), 0);
  });

  test('arguments and results that are not JSON fail clearly, at call time and on the worker', async () => {
    const app = makeApp();
    const t = app.task('t.echo', (x: unknown) => x);
    const bad = app.task('t.bad', () => new Map() as unknown);
    await assert.rejects(t.delay(() => 1), (e: unknown) => e instanceof NotJsonError && /args\[0\] is a function/.test(e.message));
    await assert.rejects(t.delay(Symbol('s')), /Symbol/);
    const cyc: any = {};
    cyc.self = cyc;
    await assert.rejects(t.delay(cyc), /circular/);
    await startWorker(app);
    await assert.rejects((await bad.delay()).get({ timeout: 5000 }), (e: unknown) => e instanceof TaskError && /must be JSON/.test(e.message));
    assert.deepEqual(await (await t.delay({ when: new Date(0) })).get({ timeout: 5000 }), { when: '1970-01-01T00:00:00.000Z' });
  });

  test('kwargs reach the handler as a trailing object, and the request is visible', async () => {
    const app = makeApp();
    const t = app.task('t.req', function (this: TaskContext, ...args: unknown[]) {
      return { args, id: this.request.id, retries: this.request.retries, queue: this.request.deliveryInfo.queue };
    });
    await startWorker(app);
    const res = await t.applyAsync([1], { x: 2 });
    assert.deepEqual(await res.get({ timeout: 5000 }), { args: [1, { x: 2 }], id: res.id, retries: 0, queue: 'celery' });
  });

  test('updateState() stores a custom state readable while the task runs', async () => {
    const app = makeApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = app.task('t.progress', async function (this: TaskContext) {
      await this.updateState({ state: 'PROGRESS', meta: { done: 3, total: 10 } });
      await gate;
      return 'ok';
    });
    await startWorker(app);
    const res = await t.delay();
    while ((await res.state()) !== ('PROGRESS' as string)) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await res.info(), { done: 3, total: 10 });
    release();
    assert.equal(await res.get({ timeout: 5000 }), 'ok');
  });
});

describe('retries', () => {
  test('retry({ countdown }) re-runs under the same id with retries+1, RETRY stored in between', async () => {
    const app = makeApp();
    const seen: number[] = [];
    const t = app.task('t.flaky', function (this: TaskContext) {
      seen.push(this.request.retries);
      if (this.request.retries < 2) throw this.retry({ countdown: 0.3, exc: new Error(`attempt ${this.request.retries}`) });
      return 'done';
    });
    await startWorker(app);
    const res = await t.delay();
    let sawRetry = false;
    const watch = (async () => {
      // until RETRY is seen or the task is done (not a fixed number of polls: the first run may start late)
      const deadline = Date.now() + 10_000;
      while (!sawRetry && Date.now() < deadline) {
        const state = await res.state();
        if (state === 'RETRY') sawRetry = true;
        else if (state === 'SUCCESS') break;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = Date.now();
    assert.equal(await res.get({ timeout: 10_000 }), 'done');
    await watch;
    assert.ok(Date.now() - started >= 550, 'two countdowns of 0.3 s');
    assert.deepEqual(seen, [0, 1, 2]);
    assert.ok(sawRetry, 'RETRY state was stored');
  });

  test('retries stop at maxRetries and the failure carries the original error', async () => {
    const app = makeApp();
    let runs = 0;
    const t = app.task('t.always', function (this: TaskContext) {
      runs++;
      throw this.retry({ countdown: 0.05, exc: new RangeError('still broken') });
    }, { maxRetries: 2 });
    await startWorker(app);
    const res = await t.delay();
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'ValueError' && /still broken/.test(e.message));
    assert.equal(runs, 3);
  });

  test('autoretryFor with exponential backoff, capped', async (tc) => {
    const app = makeApp();
    class Flaky extends Error {}
    const times: number[] = [];
    const t = app.task('t.auto', function (this: TaskContext) {
      times.push(Date.now());
      if (this.request.retries < 3) throw new Flaky('not yet');
      return this.request.retries;
    }, { autoretryFor: [Flaky], retryBackoff: 0.2, retryBackoffMax: 0.5, retryJitter: false, maxRetries: 5 });
    const lines: string[] = [];
    await startWorker(app, { logger: quietLogger(lines) });
    assert.equal(await (await t.delay()).get({ timeout: 10_000 }), 3);
    // 0.2·2^0, 0.2·2^1, then capped at 0.5 (uncapped: 0.8): the countdowns the worker chose, from its log
    const countdowns = lines.flatMap((l) => /t\.auto\[.*\] retry: Retry in ([\d.]+)s/.exec(l)?.[1] ?? []).map(Number);
    assert.deepEqual(countdowns, [0.2, 0.4, 0.5]);
    // and they were waited: lower bounds strict, upper bounds generous (a loaded machine may run a retry late)
    const gaps = times.slice(1).map((t2, i) => t2 - times[i]);
    tc.diagnostic(`backoff gaps ${gaps.join(', ')} ms (countdowns 200, 400, 500)`);
    assert.ok(gaps[0] >= 180 && gaps[0] < 5000, `gap0 ${gaps[0]}`);
    assert.ok(gaps[1] >= 380 && gaps[1] < 5000, `gap1 ${gaps[1]}`);
    assert.ok(gaps[2] >= 480 && gaps[2] < 5000, `gap2 ${gaps[2]}`);
  });

  test('errors not in autoretryFor fail at once', async () => {
    const app = makeApp();
    class Flaky extends Error {}
    let runs = 0;
    const t = app.task('t.auto2', () => {
      runs++;
      throw new Error('fatal');
    }, { autoretryFor: [Flaky] });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 5000 }), /fatal/);
    assert.equal(runs, 1);
  });
});

describe('routing, priorities and expiry', () => {
  test('queues: a worker consumes only its -Q queues; taskRoutes and options pick the queue', async () => {
    const app = makeApp({ taskRoutes: { 't.math.*': { queue: 'math' } } });
    const add = app.task('t.math.add', (a: number, b: number) => a + b);
    const other = app.task('t.other', () => 'other');
    await startWorker(app, { queues: ['math'] });
    assert.equal(await (await add.delay(1, 2)).get({ timeout: 5000 }), 3);
    const stuck = await other.delay();
    await assert.rejects(stuck.get({ timeout: 400 }), TimeoutError);
    assert.equal(await redis.client(0).llen('celery'), 1);
    const explicit = await other.applyAsync([], {}, { queue: 'math' });
    assert.equal(await explicit.get({ timeout: 5000 }), 'other');
    assert.equal(await redis.client(0).sismember('_kombu.binding.math', 'math\x06\x16\x06\x16math'), 1);
  });

  test('priority: band 0 before 3 before 6 before 9, FIFO inside a band', async () => {
    const app = makeApp();
    const order: string[] = [];
    const t = app.task('t.order', (tag: string) => {
      order.push(tag);
      return tag;
    });
    const sent = [['p9a', 9], ['p0a', 0], ['p6a', 6], ['p3a', 3], ['p0b', 1], ['p9b', 10], ['p3b', 5]] as const;
    for (const [tag, priority] of sent) await t.applyAsync([tag], {}, { priority });
    assert.equal(await redis.client(0).llen('celery\x06\x169'), 2);
    const w = await startWorker(app, { concurrency: 1, prefetchMultiplier: 1 });
    while (order.length < sent.length) await new Promise((r) => setTimeout(r, 20));
    await w.idle();
    assert.deepEqual(order, ['p0a', 'p0b', 'p3a', 'p3b', 'p6a', 'p9a', 'p9b']);
  });

  test('expires in the past: REVOKED, not run', async () => {
    const app = makeApp();
    let ran = false;
    const t = app.task('t.late', () => (ran = true));
    const res = await t.applyAsync([], {}, { expires: 0.05 });
    await new Promise((r) => setTimeout(r, 100));
    await startWorker(app);
    await assert.rejects(res.get({ timeout: 5000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
    assert.equal(await res.state(), 'REVOKED');
    assert.equal(ran, false);
  });

  test('countdown: runs no earlier than asked', async () => {
    const app = makeApp();
    const t = app.task('t.when', () => Date.now());
    await startWorker(app);
    const sent = Date.now();
    const res = await t.applyAsync([], {}, { countdown: 0.8 });
    const ranAt = await res.get({ timeout: 5000 });
    assert.ok(ranAt - sent >= 790, `ran after ${ranAt - sent} ms`);
  });

  test('applyAsync(args, options) is refused (E_AMBIGUOUS_OPTIONS); options go third', async () => {
    const app = makeApp();
    const t = app.task('t.q', function (this: TaskContext) {
      return this.request.deliveryInfo.queue;
    });
    await startWorker(app, { queues: ['math', 'celery'] });
    await assert.rejects(t.applyAsync([], { queue: 'math', priority: 3 }), { code: 'E_AMBIGUOUS_OPTIONS' });
    assert.equal(await (await t.applyAsync([], {}, { queue: 'math', priority: 3 })).get({ timeout: 5000 }), 'math');
  });

  test('unknown task: FAILURE with NotRegistered, worker keeps going', async () => {
    const app = makeApp();
    const ok = app.task('t.ok', () => 'ok');
    await startWorker(app);
    const res = await app.sendTask('t.nobody.knows', [1]);
    await assert.rejects(res.get({ timeout: 5000 }), (e: unknown) => e instanceof TaskError && e.excType === 'NotRegistered'
      && e.excModule === 'celery.exceptions' && e.message.includes('t.nobody.knows'));
    assert.equal(await (await ok.delay()).get({ timeout: 5000 }), 'ok');
    assert.equal(await redis.client(0).hlen('unacked'), 0);
  });
});

describe('acks', () => {
  test('late ack: the unacked entry lives while the task runs and is gone after the result', async () => {
    const app = makeApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = app.task('t.gated', async () => {
      await gate;
      return 1;
    });
    const w = await startWorker(app);
    const res = await t.delay();
    const c = redis.client(0);
    while ((await c.hlen('unacked')) === 0) await new Promise((r) => setTimeout(r, 10));
    const [tag] = await c.hkeys('unacked');
    const entry = JSON.parse((await c.hget('unacked', tag))!);
    assert.equal(entry.length, 3);
    assert.deepEqual(entry.slice(1), ['', 'celery']);
    assert.equal(entry[0].headers.id, res.id);
    assert.ok((await c.zscore('unacked_index', tag)) !== null);
    assert.ok((await c.zscore('celeriac.leases', tag)) !== null);
    release();
    await res.get({ timeout: 5000 });
    await w.idle();
    assert.equal(await c.hlen('unacked'), 0);
    assert.equal(await c.zcard('unacked_index'), 0);
    assert.equal(await c.zcard('celeriac.leases'), 0);
  });

  test('acksLate: false acknowledges before the body runs', async () => {
    const app = makeApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const t = app.task('t.early', async () => {
      started = true;
      await gate;
      return 1;
    }, { acksLate: false });
    await startWorker(app);
    const res = await t.delay();
    while (!started) await new Promise((r) => setTimeout(r, 10));
    const c = redis.client(0);
    // the early ack is written in the background: wait for it (up to 10 s) while the task is still held at its gate
    const deadline = Date.now() + 10_000;
    while ((await c.hlen('unacked')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await c.hlen('unacked'), 0);
    release();
    assert.equal(await res.get({ timeout: 5000 }), 1);
  });
});
