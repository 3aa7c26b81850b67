// Python Celery client (celery_peer.py send/result) → celeriac Worker in this process, over a real redis-server.
// Every test uses its own queue so a worker left over from another test never steals its messages.
import { closeAll } from '../helpers/lifecycle.ts';
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { naiveUtcMs, peerResult, peerSend, pyClient, PyWorker, sleep, until } from '../helpers/python.ts';

let redis: RedisServer;
const open: Array<Worker | Celeriac> = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  await closeAll(open);
});

function makeApp(): Celeriac {
  const app = new Celeriac('interop', { broker: redis.url(0), backend: redis.url(1) });
  open.push(app);
  return app;
}

async function startWorker(app: Celeriac, q: string, o: ConstructorParameters<typeof Worker>[1] = {}): Promise<Worker> {
  const w = new Worker(app, { logger: quietLogger(), queues: [q], ...o });
  await w.start();
  open.push(w);
  return w;
}

const SEP = '\x06\x16';

describe('Python client → TS worker', () => {
  test('a dotted TS task name sent by Python runs on the TS worker; the Python client reads SUCCESS and the value', async () => {
    const q = 'pyts.add';
    const app = makeApp();
    app.task('ts.math.add', (a: number, b: number) => a + b);
    app.task('ts.echo.args', (...args: unknown[]) => args);
    await startWorker(app, q);
    const [sum, echoed] = await Promise.all([
      peerSend(redis, 'ts.math.add', [2, 3], { queue: q }),
      peerSend(redis, 'ts.echo.args', [1, 2.5, 'three', null, true, { a: [1, { b: {} }] }, []], { queue: q }),
    ]);
    assert.equal(sum.state, 'SUCCESS', JSON.stringify(sum));
    assert.equal(sum.result, 5);
    assert.equal(sum.traceback, null);
    assert.deepEqual(sum.children, []);
    assert.ok(sum.date_done, 'date_done is set');
    assert.equal(echoed.state, 'SUCCESS', JSON.stringify(echoed));
    assert.deepEqual(echoed.result, [1, 2.5, 'three', null, true, { a: [1, { b: {} }] }, []]);
  });

  test('unicode kwargs reach the TS handler as a trailing object, and unicode results come back intact', async () => {
    const q = 'pyts.unicode';
    const app = makeApp();
    app.task('ts.echo.kw', (...args: unknown[]) => {
      const kw = args[args.length - 1] as Record<string, string>;
      return { args, codePoints: [...kw.greeting].length, reply: `${kw.greeting} → ${kw.emoji}` };
    });
    await startWorker(app, q);
    const kwargs = { greeting: 'h\u00e9llo \u2603', emoji: '\u{1F389}', 'cl\u00e9': '\u6F22\u5B57', nested: { '\u00fc': ['\u00df', 1] } };
    const r = await peerSend(redis, 'ts.echo.kw', ['x'], { queue: q, kwargs });
    assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
    assert.deepEqual(r.result, { args: ['x', kwargs], codePoints: 7, reply: 'h\u00e9llo \u2603 → \u{1F389}' });
  });

  test('a failing TS task: the Python client sees FAILURE with a Python-shaped exception', async () => {
    const q = 'pyts.fail';
    const app = makeApp();
    class PaymentError extends Error {
      override name = 'PaymentError';
    }
    app.task('ts.fail.type', (msg: string) => {
      throw new TypeError(msg);
    });
    app.task('ts.fail.plain', () => {
      throw new Error('plain js error');
    });
    app.task('ts.fail.custom', () => {
      throw new PaymentError('card declined');
    });
    await startWorker(app, q);
    const [typeErr, plain, custom] = await Promise.all([
      peerSend(redis, 'ts.fail.type', ['bad input \u2603'], { queue: q }),
      peerSend(redis, 'ts.fail.plain', [], { queue: q }),
      peerSend(redis, 'ts.fail.custom', [], { queue: q }),
    ]);
    assert.equal(typeErr.state, 'FAILURE', JSON.stringify(typeErr));
    // Python rebuilt the real builtins.TypeError
    assert.deepEqual(typeErr.result, { exc_type: 'TypeError', exc_message: ['bad input \u2603'], exc_module: 'builtins' });
    assert.match(typeErr.traceback ?? '', /TypeError/);
    assert.equal(plain.state, 'FAILURE');
    assert.deepEqual(plain.result, { exc_type: 'Exception', exc_message: ['plain js error'], exc_module: 'builtins' });
    assert.equal(custom.state, 'FAILURE');
    // a class Python cannot import is made up under celery.exceptions (docs/wire-format.md §7.2): name and message survive
    assert.equal(custom.result.exc_type, 'PaymentError');
    assert.deepEqual(custom.result.exc_message, ['card declined']);
    assert.equal(custom.result.exc_module, 'celery.exceptions');
  });

  test('--countdown 2: the TS worker holds the task until the ETA Python computed', async () => {
    const q = 'pyts.countdown';
    const app = makeApp();
    app.task('ts.when', function (this: TaskContext) {
      return { ranAt: Date.now(), eta: this.request.eta?.getTime() ?? null };
    });
    await startWorker(app, q);
    const spawnedAt = Date.now();
    const r = await peerSend(redis, 'ts.when', [], { queue: q, countdown: 2 });
    assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
    const { ranAt, eta } = r.result as { ranAt: number; eta: number | null };
    assert.ok(eta !== null, 'the message carried an eta');
    assert.ok(eta - spawnedAt >= 2000, `eta is ${eta - spawnedAt} ms after the client started`);
    // JS dates drop the microseconds of the eta, so "not before the eta" is checked at millisecond precision
    assert.ok(ranAt >= eta, `ran ${eta - ranAt} ms before its eta`);
    assert.ok(ranAt - spawnedAt >= 2000, `ran ${ranAt - spawnedAt} ms after the send started`);
  });

  test('--priority: Python puts messages on kombu band lists; the TS worker serves 0 before 3 before 6 before 9', async () => {
    const q = 'pyts.prio';
    const app = makeApp();
    const order: number[] = [];
    app.task('ts.prio', function (this: TaskContext, tag: number) {
      order.push(tag);
      return { tag, priority: this.request.deliveryInfo.priority, queue: this.request.deliveryInfo.queue };
    });
    const priorities = [9, 0, 6, 3];
    // sent in parallel while no worker runs: the band decides the order, not the send order
    const sends = priorities.map((p) => peerSend(redis, 'ts.prio', [p], { queue: q, priority: p }));
    const c = redis.client(0);
    const bands = [q, `${q}${SEP}3`, `${q}${SEP}6`, `${q}${SEP}9`];
    await until(async () => (await Promise.all(bands.map((k) => c.llen(k)))).every((n) => n === 1),
      'one message on each priority band list', 20_000);
    await startWorker(app, q, { concurrency: 1, prefetchMultiplier: 1 });
    const results = await Promise.all(sends);
    for (const [i, r] of results.entries()) {
      assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
      assert.deepEqual(r.result, { tag: priorities[i], priority: priorities[i], queue: q });
    }
    assert.deepEqual(order, [0, 3, 6, 9]);
  });

  test('--expires in the past by the time the TS worker sees it: REVOKED "expired", not run', async () => {
    const q = 'pyts.expires';
    const app = makeApp();
    let ran = false;
    app.task('ts.late', () => (ran = true));
    const sending = peerSend(redis, 'ts.late', [], { queue: q, expires: 0.2 });
    const c = redis.client(0);
    await until(async () => (await c.llen(q)) === 1, 'the message on its queue', 20_000);
    await sleep(500);
    await startWorker(app, q);
    const r = await sending;
    assert.equal(r.state, 'REVOKED', JSON.stringify(r));
    assert.deepEqual(r.result, { exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'celery.exceptions' });
    assert.equal(ran, false);
  });

  test('--eta as a naive datetime is read as UTC by the TS worker', async () => {
    const q = 'pyts.naive-eta';
    const app = makeApp();
    app.task('ts.when', function (this: TaskContext) {
      return { ranAt: Date.now(), eta: this.request.eta?.getTime() ?? null, raw: this.request.headers.eta };
    });
    await startWorker(app, q);
    const eta = new Date(Date.now() + 1500);
    const naive = eta.toISOString().slice(0, 23); // "2026-11-30T00:40:46.076", no zone
    const r = await peerSend(redis, 'ts.when', [], { queue: q, eta: naive });
    assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
    const res = r.result as { ranAt: number; eta: number; raw: string };
    assert.ok(!/(Z|[+-]\d\d:\d\d)$/.test(res.raw), `Python sent the eta naive: ${res.raw}`);
    assert.equal(res.eta, eta.getTime());
    assert.ok(res.ranAt >= eta.getTime(), `ran ${eta.getTime() - res.ranAt} ms early`);
  });

  test('protocol 1 messages from a Python client (task_protocol=1) run on the TS worker, eta included', async () => {
    const q = 'pyts.proto1';
    const app = makeApp();
    app.task('ts.v1', function (this: TaskContext, ...args: unknown[]) {
      return { args, retries: this.request.retries, eta: this.request.eta?.getTime() ?? null, ranAt: Date.now() };
    });
    await startWorker(app, q);
    const env = { CELERY_PEER_PROTOCOL: '1' };
    const [now, later] = await Promise.all([
      peerSend(redis, 'ts.v1', [1, 'h\u00e9'], { queue: q, kwargs: { k: [1, 2] }, env }),
      peerSend(redis, 'ts.v1', [2], { queue: q, countdown: 1, env }),
    ]);
    assert.equal(now.state, 'SUCCESS', JSON.stringify(now));
    assert.deepEqual(now.result, { args: [1, 'h\u00e9', { k: [1, 2] }], retries: 0, eta: null, ranAt: now.result.ranAt });
    assert.equal(later.state, 'SUCCESS', JSON.stringify(later));
    assert.ok(later.result.eta !== null && later.result.ranAt >= later.result.eta, JSON.stringify(later.result));
  });

  test('an expiry that passes while an ETA task waits: REVOKED "expired" at the ETA, like a Python worker', async () => {
    // Python re-checks `expires` when a held ETA task comes due (Request.execute_using_pool → revoked()). Two shapes:
    // a short countdown (a TS worker holds it in memory) and a longer one (a TS worker parks it in Redis).
    const shapes = [{ countdown: 0.95, expires: 0.5 }, { countdown: 1.8, expires: 0.5 }];
    const pyq = 'pyts.eta-expiry.py';
    const py = await PyWorker.start(redis, [pyq], 'py-ref@%h');
    let reference;
    try {
      reference = await Promise.all(shapes.map((o) => peerSend(redis, 'celery_peer.add', [1, 2], { queue: pyq, ...o, timeout: 8 })));
    } finally {
      await py.stop();
    }
    for (const r of reference) {
      assert.equal(r.state, 'REVOKED', `Python reference: ${JSON.stringify(r)}`);
      assert.deepEqual(r.result, { exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'celery.exceptions' });
    }

    const q = 'pyts.eta-expiry';
    const app = makeApp();
    const ran: number[] = [];
    app.task('ts.add', (a: number, b: number) => {
      ran.push(b);
      return a + b;
    });
    const lines: string[] = [];
    await startWorker(app, q, { logger: quietLogger(lines) });
    const results = await Promise.all(shapes.map((o, i) => peerSend(redis, 'ts.add', [1, i], { queue: q, ...o, timeout: 8 })));
    // precondition: the messages arrived before their expiry (else this test proves nothing)
    for (const r of results) {
      // held ("received") or parked ("scheduled for …") before its expiry, not discarded on arrival
      assert.ok(lines.some((l) => l.includes(`[${r.task_id}] received`) || l.includes(`[${r.task_id}] scheduled for`)),
        `message ${r.task_id} arrived already expired`);
    }
    for (const [i, r] of results.entries()) {
      assert.equal(r.state, 'REVOKED', `countdown ${shapes[i].countdown} / expires ${shapes[i].expires}: ${JSON.stringify(r)}`);
      assert.deepEqual(r.result, reference[i].result);
    }
    assert.deepEqual(ran, [], 'the TS worker ran tasks whose expiry had passed by their ETA');
  });

  test('time_limit from a Python client: the caller can catch celery.exceptions.TimeLimitExceeded, as with a Python worker', async () => {
    const q = 'pyts.timelimit';
    const pyq = 'pyts.timelimit.py';
    const app = makeApp();
    app.task('ts.slow', async (seconds: number) => {
      await sleep(seconds * 1000);
      return 'finished';
    });
    await startWorker(app, q);
    const py = await PyWorker.start(redis, [pyq], 'py-tl@%h');
    let out;
    try {
      out = await pyClient(redis, `
from celery.exceptions import TimeLimitExceeded
out = {}
for q, name in ((${JSON.stringify(pyq)}, 'celery_peer.sleepy'), (${JSON.stringify(q)}, 'ts.slow')):
    r = app.send_task(name, args=[3], queue=q, time_limit=1)
    try:
        out[name] = ['no error', r.get(timeout=10)]
    except TimeLimitExceeded as e:
        out[name] = ['TimeLimitExceeded', r.backend.get_task_meta(r.id)['result']]
    except Exception as e:
        out[name] = ['%s.%s%r' % (type(e).__module__, type(e).__name__, e.args), r.backend.get_task_meta(r.id)['result']]
print(json.dumps(out, default=repr))
`);
    } finally {
      await py.stop();
    }
    assert.equal(out['celery_peer.sleepy'][0], 'TimeLimitExceeded', `Python reference: ${JSON.stringify(out)}`);
    assert.equal(out['ts.slow'][0], 'TimeLimitExceeded', `TS worker: ${JSON.stringify(out)}`);
  });

  test('an unknown task name: the Python client sees FAILURE NotRegistered', async () => {
    const q = 'pyts.unknown';
    const app = makeApp();
    app.task('ts.known', () => 'ok');
    await startWorker(app, q);
    const r = await peerSend(redis, 'ts.nobody.knows', [1], { queue: q });
    assert.equal(r.state, 'FAILURE', JSON.stringify(r));
    assert.deepEqual(r.result, { exc_type: 'NotRegistered', exc_message: ['ts.nobody.knows'], exc_module: 'celery.exceptions' });
    assert.equal(await redis.client(0).hlen('unacked'), 0);
  });

  test('a TS task that retries: the Python client waits through RETRY and gets the final value', async () => {
    const q = 'pyts.retry';
    const app = makeApp();
    app.task('ts.flaky', function (this: TaskContext, failTimes: number) {
      if (this.request.retries < failTimes) throw this.retry({ countdown: 0.2, exc: new Error(`attempt ${this.request.retries}`) });
      return { retries: this.request.retries };
    });
    await startWorker(app, q);
    const r = await peerSend(redis, 'ts.flaky', [2], { queue: q });
    assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
    assert.deepEqual(r.result, { retries: 2 });
  });
});

describe('shared results: a Python client reads what a TS worker stored', () => {
  test('`celery_peer.py result <id>` reads a SUCCESS and a FAILURE written by the TS worker', async () => {
    const q = 'shared.ts';
    const app = makeApp();
    app.task('ts.shared.value', (n: number) => ({ n, text: 'h\u00e9llo \u2603', list: [1, 2.5, null] }));
    app.task('ts.shared.boom', () => {
      throw new TypeError('shared boom');
    });
    await startWorker(app, q);
    const ok = await app.sendTask('ts.shared.value', [7], {}, { queue: q });
    const bad = await app.sendTask('ts.shared.boom', [], {}, { queue: q });
    await ok.get({ timeout: 5000 });
    await assert.rejects(bad.get({ timeout: 5000 }));
    const [okPy, badPy] = await Promise.all([peerResult(redis, ok.id), peerResult(redis, bad.id)]);
    assert.equal(okPy.task_id, ok.id);
    assert.equal(okPy.state, 'SUCCESS');
    assert.deepEqual(okPy.result, { n: 7, text: 'h\u00e9llo \u2603', list: [1, 2.5, null] });
    assert.deepEqual(okPy.children, []);
    assert.ok(Math.abs(naiveUtcMs(okPy.date_done!) - Date.now()) < 60_000, `date_done ${okPy.date_done}`);
    assert.equal(badPy.state, 'FAILURE');
    assert.deepEqual(badPy.result, { exc_type: 'TypeError', exc_message: ['shared boom'], exc_module: 'builtins' });
  });

  test('a Python client waiting on an id is woken by the TS worker\'s store (PUBLISH)', async () => {
    const q = 'shared.wait';
    const app = makeApp();
    app.task('ts.shared.later', () => 'woken');
    const res = await app.sendTask('ts.shared.later', [], {}, { queue: q });
    const waiting = peerResult(redis, res.id, 15);
    // let the Python client subscribe and see PENDING before anything is stored
    await sleep(1500);
    await startWorker(app, q);
    const startedAt = Date.now();
    const r = await waiting;
    assert.equal(r.state, 'SUCCESS', JSON.stringify(r));
    assert.equal(r.result, 'woken');
    // polling-free: woken well before its 15 s timeout
    assert.ok(Date.now() - startedAt < 5000, `took ${Date.now() - startedAt} ms`);
  });
});
