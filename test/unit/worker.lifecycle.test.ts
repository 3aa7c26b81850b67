// The in-process worker on memory:// (the fast tier of test/integration/worker.tasks.test.ts and worker.eta.test.ts):
// queues and priorities, expiry and revoke, ETA/countdown (held in memory or parked in the broker), acks early and
// late, warm and cold stop. What needs real processes, kill -9 or a Redis restart stays in the Redis tier
// (worker.crash.test.ts, worker.eta.test.ts); so do promises about Redis keys.
// Reservations and parked messages are read from the memory store, as the Redis tier reads Redis keys.
import { once } from 'node:events';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskRevokedError, TimeoutError, Worker, type Celeriac, type TaskContext } from 'celeriac';
import { memoryStore } from '../../src/broker/memory/store.ts';
import { memoryWorkers } from '../helpers/memory-workers.ts';
import { quietLogger } from '../helpers/logs.ts';

const { makeApp, startWorker } = memoryWorkers('wl', { stopCold: true });

/** The broker's side of the memory store: reservations (any holder) and parked messages. */
const store = (app: Celeriac) => memoryStore(app.conf.broker);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('queues and priorities', () => {
  test('a worker consumes only its queues; taskRoutes and options pick the queue', async () => {
    const app = makeApp({ taskRoutes: { 't.math.*': { queue: 'math' } } });
    const add = app.task('t.math.add', (a: number, b: number) => a + b);
    const other = app.task('t.other', function (this: TaskContext) {
      return this.request.deliveryInfo.queue;
    });
    await startWorker(app, { queues: ['math'] });
    assert.equal(await (await add.delay(1, 2)).get({ timeout: 10_000 }), 3);
    const stuck = await other.delay();
    await assert.rejects(stuck.get({ timeout: 100 }), TimeoutError);
    assert.equal(await (await app.broker()).queueLength('celery'), 1, 'still waiting on its queue');
    const explicit = await other.applyAsync([], {}, { queue: 'math' });
    assert.equal(await explicit.get({ timeout: 10_000 }), 'math');
  });

  test('applyAsync(args, options) is refused (E_AMBIGUOUS_OPTIONS); options go third', async () => {
    const app = makeApp();
    const t = app.task('t.q', function (this: TaskContext) {
      return this.request.deliveryInfo.queue;
    });
    await startWorker(app, { queues: ['math', 'celery'] });
    await assert.rejects(t.applyAsync([], { queue: 'math', priority: 3 }), { code: 'E_AMBIGUOUS_OPTIONS' });
    assert.equal(await (await t.applyAsync([], {}, { queue: 'math', priority: 3 })).get({ timeout: 10_000 }), 'math');
  });

  test('priority: band 0 before 3 before 6 before 9, FIFO inside a band', async () => {
    const app = makeApp();
    const order: string[] = [];
    const t = app.task('t.order', function (this: TaskContext, tag: string) {
      order.push(`${tag}:${this.request.deliveryInfo.priority}`);
      return tag;
    });
    const sent = [['p9a', 9], ['p0a', 0], ['p6a', 6], ['p3a', 3], ['p0b', 1], ['p9b', 10], ['p3b', 5]] as const;
    for (const [tag, priority] of sent) await t.applyAsync([tag], {}, { priority });
    const w = await startWorker(app, { concurrency: 1, prefetchMultiplier: 1 });
    await until(() => order.length === sent.length, 'every task ran');
    await w.idle();
    assert.deepEqual(order, ['p0a:0', 'p0b:1', 'p3a:3', 'p3b:5', 'p6a:6', 'p9a:9', 'p9b:10']);
  });

  test('with several queues, each gets a turn', async () => {
    const app = makeApp();
    const order: string[] = [];
    const t = app.task('t.rr', function (this: TaskContext) {
      order.push(this.request.deliveryInfo.queue);
    });
    for (let i = 0; i < 3; i++) await t.applyAsync([], {}, { queue: 'a' });
    for (let i = 0; i < 3; i++) await t.applyAsync([], {}, { queue: 'b' });
    const w = await startWorker(app, { queues: ['a', 'b'], concurrency: 1, prefetchMultiplier: 1 });
    await until(() => order.length === 6, 'every task ran');
    await w.idle();
    assert.ok(order.slice(0, 2).includes('b'), `b waited for all of a: ${order.join(' ')}`);
  });
});

describe('expiry and revoke', () => {
  test('expires in the past: REVOKED, not run', async () => {
    const app = makeApp();
    let ran = false;
    const t = app.task('t.late', () => (ran = true));
    const res = await t.applyAsync([], {}, { expires: 0.05 });
    await sleep(100);
    await startWorker(app);
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
    assert.equal(await res.state(), 'REVOKED');
    assert.equal(ran, false);
  });

  test('expires wins over a later ETA, held in memory or parked: REVOKED, never run', async () => {
    const app = makeApp();
    const runs: string[] = [];
    const t = app.task('t.mark', (tag: string) => runs.push(tag));
    await startWorker(app);
    const held = await t.applyAsync(['held'], {}, { countdown: 0.4, expires: 0.2 });
    const parked = await t.applyAsync(['parked'], {}, { countdown: 1.3, expires: 0.5 });
    for (const res of [held, parked]) {
      await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
    }
    assert.deepEqual(runs, []);
  });

  test('a message that expires while it waits for a free slot is REVOKED when its turn comes', async () => {
    const app = makeApp();
    const g = gate();
    const runs: string[] = [];
    const t = app.task('t.slot', async (tag: string) => {
      runs.push(tag);
      if (tag === 'first') await g.wait;
      return tag;
    });
    await startWorker(app, { concurrency: 1 });
    const first = await t.delay('first');
    await until(() => runs.length === 1, 'first started');
    const second = await t.applyAsync(['second'], {}, { expires: 0.1 });
    await sleep(200);
    g.open();
    assert.equal(await first.get({ timeout: 10_000 }), 'first');
    await assert.rejects(second.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
    assert.deepEqual(runs, ['first']);
  });

  test('revoke before arrival: REVOKED when it comes, not run; other tasks run', async () => {
    const app = makeApp();
    const runs: string[] = [];
    const t = app.task('t.rv', (tag: string) => {
      runs.push(tag);
      return tag;
    });
    const w = await startWorker(app);
    w.revoke('rv-1');
    const res = await t.applyAsync(['revoked'], {}, { taskId: 'rv-1' });
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'revoked');
    assert.equal(await res.state(), 'REVOKED');
    assert.equal(await (await t.delay('other')).get({ timeout: 10_000 }), 'other');
    await w.idle();
    assert.deepEqual(runs, ['other']);
    assert.equal(store(app).reserved.size, 0, 'the revoked message was acked');
  });

  test('revoke while held for its ETA: REVOKED at its due time, not run', async () => {
    const app = makeApp();
    let ran = false;
    const t = app.task('t.rvh', () => (ran = true));
    const w = await startWorker(app);
    const res = await t.applyAsync([], {}, { countdown: 0.3 });
    await until(() => w.scheduled().length === 1, 'held');
    w.revoke(res.id);
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'revoked');
    assert.equal(ran, false);
  });

  test('revoke with terminate: the running task\'s signal fires, REVOKED terminated is kept, the worker goes on', async () => {
    const app = makeApp();
    let reason: unknown = null;
    const t = app.task('t.term', function (this: TaskContext) {
      return new Promise((resolve) => {
        this.signal.addEventListener('abort', () => {
          reason = this.signal.reason;
          resolve('returned after terminate');
        });
      });
    });
    const ok = app.task('t.ok', () => 'ok');
    const w = await startWorker(app);
    const res = await t.delay();
    await until(() => w.size.running === 1, 'running');
    w.revoke(res.id, true);
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'terminated');
    assert.ok(reason instanceof TaskRevokedError);
    assert.equal(await (await ok.delay()).get({ timeout: 10_000 }), 'ok');
    await w.idle();
    assert.equal(await res.state(), 'REVOKED', 'what the handler returned after terminate is ignored');
    assert.equal(store(app).reserved.size, 0);
  });
});

describe('ETA and countdown', () => {
  test('countdown and eta: run no earlier than asked, held in memory (< 1 s) or parked in the broker', async () => {
    const app = makeApp();
    const ran = new Map<string, { at: number; eta: number | null }>();
    const t = app.task('t.when', function (this: TaskContext, tag: string) {
      ran.set(tag, { at: Date.now(), eta: this.request.eta?.getTime() ?? null });
      return tag;
    });
    const w = await startWorker(app);
    const sent = Date.now();
    const etaAt = new Date(sent + 500);
    const short = await t.applyAsync(['short'], {}, { countdown: 0.3 });
    const byEta = await t.applyAsync(['eta'], {}, { eta: etaAt });
    const long = await t.applyAsync(['long'], {}, { countdown: 1.5 });
    await until(() => w.scheduled().length === 2 && store(app).parked.length === 1, 'two held, one parked');
    assert.equal(w.size.reserved, 2, 'the parked one holds no reservation');
    assert.equal(ran.size, 0);
    for (const r of [short, byEta, long]) await r.get({ timeout: 10_000 });
    const at = (tag: string) => ran.get(tag)!.at;
    assert.ok(at('short') - sent >= 300, `short ran after ${at('short') - sent} ms`);
    assert.ok(at('eta') >= etaAt.getTime(), `eta ran ${etaAt.getTime() - at('eta')} ms early`);
    assert.ok(at('long') - sent >= 1500, `long ran after ${at('long') - sent} ms`);
    for (const [tag, r] of ran) assert.ok(r.eta !== null && r.at >= r.eta, `${tag} ran before its eta`);
    assert.deepEqual([...ran.keys()], ['short', 'eta', 'long']);
  });

  test('many random countdowns (0–1.5 s): each runs exactly once, none early', async () => {
    const app = makeApp();
    const runs: Array<{ id: string; at: number; eta: number }> = [];
    const t = app.task('t.many', function (this: TaskContext) {
      runs.push({ id: this.request.id, at: Date.now(), eta: this.request.eta?.getTime() ?? 0 });
    });
    await startWorker(app);
    const n = 200;
    const due = new Map<string, number>();
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const countdown = (i % 2 === 0 ? Math.random() : 1 + Math.random() / 2);
      const dueAt = Date.now() + countdown * 1000;
      const r = await t.applyAsync([], {}, { countdown });
      due.set(r.id, dueAt);
    }));
    await until(() => runs.length >= n, 'every task ran', 20_000);
    await sleep(100);
    assert.equal(runs.length, n);
    assert.equal(new Set(runs.map((r) => r.id)).size, n, 'none ran twice');
    for (const r of runs) {
      assert.ok(r.at >= r.eta, 'not before its eta');
      assert.ok(r.at >= Math.floor(due.get(r.id)!), 'not before the countdown asked by the caller');
    }
  });

  test('a worker stopped while a task is parked or held does not lose it; the next one runs it once, on time', async () => {
    const app = makeApp();
    const runs: Array<{ tag: string; at: number }> = [];
    const t = app.task('t.restart', (tag: string) => {
      runs.push({ tag, at: Date.now() });
      return tag;
    });
    const w1 = new Worker(app, { logger: quietLogger() });
    await w1.start();
    const sent = Date.now();
    const parked = await t.applyAsync(['parked'], {}, { countdown: 1.2 });
    const held = await t.applyAsync(['held'], {}, { countdown: 0.6 });
    await until(() => store(app).parked.length === 1 && w1.scheduled().length === 1, 'parked and held');
    await w1.stop();
    assert.equal(runs.length, 0);
    await startWorker(app);
    assert.equal(await held.get({ timeout: 10_000 }), 'held');
    assert.equal(await parked.get({ timeout: 10_000 }), 'parked');
    assert.deepEqual(runs.map((r) => r.tag).sort(), ['held', 'parked'], 'each ran once');
    assert.ok(runs.find((r) => r.tag === 'held')!.at - sent >= 600, 'held one not early');
    assert.ok(runs.find((r) => r.tag === 'parked')!.at - sent >= 1200, 'parked one not early');
  });
});

describe('acks', () => {
  test('acksLate (the default): the reservation lives while the task runs and is gone after the result', async () => {
    const app = makeApp();
    const g = gate();
    const t = app.task('t.gated', async () => {
      await g.wait;
      return 1;
    });
    const w = await startWorker(app);
    const res = await t.delay();
    await until(() => w.size.running === 1, 'running');
    assert.equal(store(app).reserved.size, 1, 'reserved in the broker while running');
    await sleep(20);
    assert.equal(store(app).reserved.size, 1, 'still reserved');
    g.open();
    assert.equal(await res.get({ timeout: 10_000 }), 1);
    await w.idle();
    assert.equal(store(app).reserved.size, 0);
    assert.equal(w.size.reserved, 0);
  });

  test('acksLate: false acknowledges before the body runs (task option and app setting)', async () => {
    for (const [name, config, options] of [
      ['task option', {}, { acksLate: false }],
      ['app setting', { taskAcksLate: false }, {}],
    ] as const) {
      const app = makeApp(config);
      const g = gate();
      let started = false;
      const t = app.task('t.early', async () => {
        started = true;
        await g.wait;
        return 1;
      }, options);
      const w = await startWorker(app);
      const res = await t.delay();
      await until(() => started, `${name}: started`);
      await until(() => store(app).reserved.size === 0, `${name}: acked while running`);
      assert.equal(w.size.running, 1);
      g.open();
      assert.equal(await res.get({ timeout: 10_000 }), 1);
    }
  });

  test('cold stop: a late-acked running task comes back, an early-acked one does not (at most once)', async () => {
    const app = makeApp();
    const g = gate();
    const late = app.task('t.lateack', async () => {
      await g.wait;
      return 'late';
    });
    const early = app.task('t.earlyack', async () => {
      await g.wait;
      return 'early';
    }, { acksLate: false });
    const w = new Worker(app, { logger: quietLogger() });
    await w.start();
    await late.delay();
    await early.delay();
    await until(() => w.size.running === 2, 'both running');
    await until(() => store(app).reserved.size === 1, 'the early one acked');
    await w.stop({ cold: true });
    g.open();
    const broker = await app.broker();
    assert.equal(await broker.queueLength('celery'), 1, 'only the late-acked message is back');
    const back = JSON.parse(store(app).band('celery', 0)[0].raw);
    assert.equal(back.headers.task, 't.lateack');
    assert.equal(store(app).reserved.size, 0);
  });
});

describe('stopping', () => {
  test('warm stop waits for the running task, gives back what has not started, takes nothing new', async () => {
    const app = makeApp();
    const g = gate();
    const runs: string[] = [];
    const t = app.task('t.warm', async (tag: string) => {
      runs.push(tag);
      if (tag === 'w0') await g.wait;
      return tag;
    });
    const w1 = new Worker(app, { logger: quietLogger(), concurrency: 1 });
    await w1.start();
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await t.delay(`w${i}`));
    await until(() => runs.length === 1 && w1.size.reserved === 3, 'w0 running, w1 and w2 reserved');
    let stopped = false;
    const stopping = w1.stop().then(() => (stopped = true));
    const broker = await app.broker();
    await until(async () => (await broker.queueLength('celery')) === 2, 'the two not started are given back');
    assert.equal(w1.state, 'stopping');
    const during = await t.delay('during');
    await sleep(50);
    assert.equal(stopped, false, 'stop() waits for the running task');
    assert.deepEqual(runs, ['w0'], 'nothing new starts while stopping');
    g.open();
    await stopping;
    assert.equal(w1.state, 'stopped');
    assert.equal(await sent[0].get({ timeout: 10_000 }), 'w0', 'the running task finished and its result is stored');
    assert.equal(await broker.queueLength('celery'), 3);
    assert.equal(store(app).reserved.size, 0, 'no reservation left behind');
    await startWorker(app);
    for (const r of [...sent, during]) await r.get({ timeout: 10_000 });
    assert.deepEqual(runs.sort(), ['during', 'w0', 'w1', 'w2'], 'each ran exactly once');
  });

  test('cold stop aborts the running task and gives its message back; a new worker runs it, redelivered', async () => {
    const app = makeApp();
    const g = gate();
    const seen: Array<{ redelivered: boolean }> = [];
    let abortReason: unknown = null;
    const t = app.task('t.cold', async function (this: TaskContext) {
      seen.push({ redelivered: this.request.deliveryInfo.redelivered });
      if (seen.length > 1) return 'second run';
      this.signal.addEventListener('abort', () => (abortReason = this.signal.reason));
      await g.wait; // cannot be interrupted: finishes only after the worker has gone
      return 'first run';
    });
    const queued = app.task('t.queued', () => 'queued');
    const w1 = new Worker(app, { logger: quietLogger(), concurrency: 1 });
    await w1.start();
    const res = await t.delay();
    const waiting = await queued.delay();
    await until(() => w1.size.running === 1 && w1.size.reserved === 2, 'running, one waiting');
    await w1.stop({ cold: true });
    assert.equal(w1.state, 'stopped');
    assert.ok(abortReason instanceof Error, 'the running task\'s signal fired');
    const broker = await app.broker();
    assert.equal(await broker.queueLength('celery'), 2, 'the running and the waiting message are back');
    assert.equal(store(app).reserved.size, 0);
    g.open();
    await sleep(20);
    assert.equal(await res.state(), 'PENDING', 'the aborted run\'s late result is not stored');
    await startWorker(app);
    assert.equal(await res.get({ timeout: 10_000 }), 'second run');
    assert.equal(await waiting.get({ timeout: 10_000 }), 'queued');
    assert.deepEqual(seen, [{ redelivered: false }, { redelivered: true }]);
  });

  test('a second stop() during a warm stop turns it cold', async () => {
    const app = makeApp();
    const g = gate();
    let runs = 0;
    const t = app.task('t.stuck', async () => {
      runs++;
      if (runs === 1) await g.wait;
      return runs;
    });
    const w1 = new Worker(app, { logger: quietLogger() });
    await w1.start();
    const res = await t.delay();
    await until(() => w1.size.running === 1, 'running');
    const warm = w1.stop();
    await sleep(20);
    assert.equal(w1.state, 'stopping');
    await w1.stop();
    await warm; // the first stop() resolves too, though the task it waited for has not settled
    assert.equal(w1.state, 'stopped');
    assert.equal(await (await app.broker()).queueLength('celery'), 1, 'the running task is back');
    g.open();
    await startWorker(app);
    assert.equal(await res.get({ timeout: 10_000 }), 2);
  });

  test('shutdownTimeout: a warm stop turns cold when running tasks outlast it', async () => {
    const app = makeApp();
    const g = gate();
    const t = app.task('t.outlast', async () => {
      await g.wait;
      return 'done';
    });
    const w1 = new Worker(app, { logger: quietLogger(), shutdownTimeout: 0.2 });
    await w1.start();
    await t.delay();
    await until(() => w1.size.running === 1, 'running');
    const t0 = Date.now();
    const stopped = once(w1, 'stopped');
    await w1.stop();
    await stopped;
    assert.ok(Date.now() - t0 >= 200, 'waited for the shutdown timeout first');
    assert.equal(w1.state, 'stopped');
    assert.equal(await (await app.broker()).queueLength('celery'), 1, 'the running task is back');
    g.open();
  });

  test('stop() resolves at the shutdown timeout even when a running task never settles', async () => {
    const app = makeApp();
    const t = app.task('t.forever', () => new Promise(() => {}));
    const w1 = new Worker(app, { logger: quietLogger(), shutdownTimeout: 0.1 });
    await w1.start();
    await t.delay();
    await until(() => w1.size.running === 1, 'running');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((r) => (timer = setTimeout(() => r('still pending 10 s after a 0.1 s shutdown timeout'), 10_000)));
    const outcome = await Promise.race([w1.stop().then(() => 'resolved'), late]);
    clearTimeout(timer);
    assert.equal(outcome, 'resolved');
  });
});
