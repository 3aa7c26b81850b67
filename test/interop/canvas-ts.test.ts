// Workflows built with celeriac's canvas (chain, group, chord, starmap) run on Python Celery workers, on celeriac
// workers and split across both; and canvases built by the real Python Celery client run on celeriac workers, with
// results read by Python. One redis-server; a celeriac Worker consumes TSQ, a Python worker PYQ.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, chain, chord, group, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { pyClient, PyWorker } from '../helpers/python.ts';

const PYQ = 'canvas-ts.py';
const TSQ = 'canvas-ts.ts';

let redis: RedisServer;
let app: Celeriac;
let worker: Worker;
let py: PyWorker;
const errbackCalls: unknown[][] = [];

before(async () => {
  redis = await startRedis();
  app = new Celeriac('canvas-ts', { broker: redis.url(0), backend: redis.url(1) });
  // celeriac versions of the peer's tasks, under the peer's names, so a Python canvas can run on TSQ
  app.task('celery_peer.add', (a: number, b: number) => a + b, { queue: TSQ });
  app.task('celery_peer.mul', (a: number, b: number) => a * b, { queue: TSQ });
  app.task('celery_peer.xsum', (xs: number[]) => xs.reduce((s, x) => s + x, 0), { queue: TSQ });
  app.task('celery_peer.fail', (message: string) => {
    throw new TypeError(message);
  }, { queue: TSQ, maxRetries: 0 });
  app.task('ts.onerror', function (this: TaskContext, ...args: unknown[]) {
    errbackCalls.push(args);
  }, { queue: TSQ });
  const [w, p] = await Promise.all([
    (async () => {
      const tw = new Worker(app, { logger: quietLogger(), queues: [TSQ] });
      await tw.start();
      return tw;
    })(),
    PyWorker.start(redis, [PYQ], 'py-canvas-ts@%h'),
  ]);
  worker = w;
  py = p;
});

after(async () => {
  await worker?.stop();
  await py?.stop();
  await app?.close();
  await redis?.dispose();
});

/** A signature of the peer's task routed to a queue: Python's (PYQ) or ours (TSQ). */
const on = (q: string, name: string, args: unknown[] = []) => app.signature<number>(`celery_peer.${name}`, args, {}, { queue: q });

describe('canvas built in TypeScript', () => {
  test('chain(add.s(1, 2), add.s(3), mul.s(10)) is 60 on Python workers, and alternating between both', async () => {
    const py3 = await chain(on(PYQ, 'add', [1, 2]), on(PYQ, 'add', [3]), on(PYQ, 'mul', [10])).applyAsync();
    assert.equal(await py3.get({ timeout: 20_000 }), 60);
    const mixed = await chain(on(PYQ, 'add', [1, 2]), on(TSQ, 'add', [3]), on(PYQ, 'mul', [10])).applyAsync();
    assert.equal(await mixed.get({ timeout: 20_000 }), 60);
  });

  for (const [headerQ, bodyQ, label] of [[PYQ, PYQ, 'all Python'], [PYQ, TSQ, 'header Python, body TS'],
    [TSQ, PYQ, 'header TS, body Python'], [TSQ, TSQ, 'all TS']] as const) {
    test(`chord(10 × add.s(i, i), xsum.s()) is 90: ${label}`, async () => {
      const res = await chord(Array.from({ length: 10 }, (_, i) => on(headerQ, 'add', [i, i])), on(bodyQ, 'xsum')).applyAsync();
      assert.equal(await res.get({ timeout: 30_000 }), 90);
    });
  }

  test('a group of 100 on both kinds of worker gives its values in order', async () => {
    const g = await group(Array.from({ length: 100 }, (_, i) => on(i % 2 ? PYQ : TSQ, 'add', [i, 1]))).applyAsync();
    assert.deepEqual(await g.get({ timeout: 30_000 }), Array.from({ length: 100 }, (_, i) => i + 1));
  });

  test('a Python client reads the result of a TypeScript chord', async () => {
    const res = await chord([on(TSQ, 'add', [1, 1]), on(PYQ, 'add', [2, 2])], on(TSQ, 'xsum')).applyAsync();
    await res.get({ timeout: 20_000 });
    const seen = await pyClient(redis, `print(json.dumps(app.AsyncResult(${JSON.stringify(res.id)}).get(timeout=10)))`);
    assert.equal(seen, 6);
  });
});

describe('saved groups', () => {
  test('a group saved here is restored by Python; one saved by Python is restored here', async () => {
    const g = await group(on(TSQ, 'add', [1, 1]), on(PYQ, 'add', [2, 2])).applyAsync();
    assert.deepEqual(await g.get({ timeout: 20_000 }), [2, 4]);
    await g.save();
    const seen = await pyClient(redis, [
      'from celery.result import GroupResult',
      `r = GroupResult.restore(${JSON.stringify(g.id)}, app=app)`,
      'print(json.dumps({"ids": [c.id for c in r.results], "values": r.get(timeout=10)}))',
    ].join('\n'));
    assert.deepEqual(seen, { ids: g.results.map((r) => r.id), values: [2, 4] });
    const q = JSON.stringify(TSQ);
    const made = await pyClient(redis, [
      `g = group(add.s(3, 3).set(queue=${q}), add.s(4, 4).set(queue=${q})).apply_async()`,
      'g.save()',
      'g.get(timeout=20)',
      'print(json.dumps({"id": g.id, "ids": [c.id for c in g.results]}))',
    ].join('\n'));
    const restored = await app.GroupResult.restore<number>(made.id);
    assert.ok(restored);
    assert.deepEqual(restored.results.map((r) => r.id), made.ids);
    assert.deepEqual(await restored.get({ timeout: 10_000 }), [6, 8]);
    await restored.delete();
    assert.equal(await app.GroupResult.restore(made.id), null);
  });
});

describe('canvas built by the Python client, run on celeriac workers', () => {
  const q = JSON.stringify(TSQ);

  test('chain with per-link options: add.s(1, 2) | add.s(3).set(countdown=0.2) | mul.s(10) is 60', async () => {
    const out = await pyClient(redis, [
      `r = chain(add.s(1, 2).set(queue=${q}), add.s(3).set(queue=${q}, countdown=0.2), mul.s(10).set(queue=${q})).apply_async()`,
      'print(json.dumps(r.get(timeout=20)))',
    ].join('\n'));
    assert.equal(out, 60);
  });

  test('a group inside a chain: add.s(1, 1) | group(mul.s(2), mul.s(3)) | xsum.s() is 10', async () => {
    const out = await pyClient(redis, [
      `r = chain(add.s(1, 1).set(queue=${q}), group(mul.s(2).set(queue=${q}), mul.s(3).set(queue=${q})), xsum.s().set(queue=${q})).apply_async()`,
      'print(json.dumps(r.get(timeout=20)))',
    ].join('\n'));
    assert.equal(out, 10);
  });

  test('chord(group(add.s(i, i) for i in range(10)), xsum.s()) is 90', async () => {
    const out = await pyClient(redis, [
      `r = chord(group(add.s(i, i).set(queue=${q}) for i in range(10)), xsum.s().set(queue=${q})).apply_async()`,
      'print(json.dumps(r.get(timeout=20)))',
    ].join('\n'));
    assert.equal(out, 90);
  });

  test('add.starmap([[1, 2], [3, 4]]) is [3, 7]; add.chunks(10 pairs, 3) runs as a group of starmaps', async () => {
    const out = await pyClient(redis, [
      `r = add.starmap([[1, 2], [3, 4]]).apply_async(queue=${q})`,
      `g = add.chunks(list(zip(range(10), range(10))), 3).apply_async(queue=${q})`,
      'print(json.dumps([r.get(timeout=20), g.get(timeout=20)]))',
    ].join('\n'));
    assert.deepEqual(out, [[3, 7], [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]]);
  });

  test('link on a chain (apply_async(link=...)) runs once with the last result', async () => {
    errbackCalls.length = 0;
    const out = await pyClient(redis, [
      `r = chain(add.s(1, 1).set(queue=${q}), add.s(2).set(queue=${q})).apply_async(link=signature('ts.onerror', queue=${q}))`,
      'print(json.dumps(r.get(timeout=20)))',
    ].join('\n'));
    assert.equal(out, 4);
    const deadline = Date.now() + 10_000;
    while (errbackCalls.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(errbackCalls, [[4]]);
  });

  test('on_error on a chain: the errback gets the failed task id, once', async () => {
    errbackCalls.length = 0;
    const out = await pyClient(redis, [
      `c = chain(add.s(1, 1).set(queue=${q}), fail.si('bad').set(queue=${q}), add.s(1).set(queue=${q}))`,
      `c = c.on_error(signature('ts.onerror', queue=${q}))`,
      'r = c.apply_async()',
      'try:\n    r.get(timeout=20)\nexcept Exception as e:\n    print(json.dumps({"failed": r.parent.id, "error": type(e).__name__}))',
    ].join('\n'));
    assert.equal(out.error, 'TypeError');
    const deadline = Date.now() + 10_000;
    while (errbackCalls.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(errbackCalls, [[out.failed]]);
  });
});
