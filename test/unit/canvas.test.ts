// Workflows built in TypeScript on memory:// with an in-process worker: signatures, chain, group, chord,
// starmap/map/chunks, nesting, links and errbacks (the Redis and Python tiers are test/interop/canvas-ts.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CeleriacError, GroupResult, TaskError, chain, chord, group, type TaskContext } from 'celeriac';
import { memoryWorkers } from '../helpers/memory-workers.ts';

const { makeApp, startWorker } = memoryWorkers('canvas');

function setup() {
  const app = makeApp();
  const add = app.task('c.add', (a: number, b: number) => a + b);
  const mul = app.task('c.mul', (a: number, b: number) => a * b);
  const double = app.task('c.double', (a: number) => a * 2);
  const xsum = app.task('c.xsum', (xs: number[]) => xs.reduce((s, x) => s + x, 0));
  const boom = app.task('c.boom', (x: unknown) => {
    throw new RangeError(`boom ${String(x)}`);
  }, { maxRetries: 0 });
  const seen: unknown[][] = [];
  const record = app.task('c.record', (...args: unknown[]) => {
    seen.push(args);
    return args.length;
  });
  return { app, add, mul, double, xsum, boom, seen, record };
}

describe('signatures', () => {
  test('s() is partial, si() immutable, set() adds options, clone() copies', async () => {
    const { app, add } = setup();
    await startWorker(app);
    assert.equal(await (await add.s(2, 3).delay()).get({ timeout: 5000 }), 5);
    assert.equal(await (await add.s(2).applyAsync([10])).get({ timeout: 5000 }), 12, 'apply-time args are prepended');
    assert.equal(await (await add.si(2, 3).applyAsync([10])).get({ timeout: 5000 }), 5, 'immutable ignores them');
    const sig = add.s(1, 1).set({ countdown: 0, priority: 3 });
    assert.equal(sig.options.priority, 3);
    const copy = sig.clone([], {}, { queue: 'other' });
    assert.equal(copy.options.queue, 'other');
    assert.equal(sig.options.queue, undefined, 'clone does not change the original');
    assert.throws(() => add.s(1).set({ countdwn: 1 } as never), (e: unknown) => e instanceof CeleriacError && e.code === 'E_BAD_OPTION');
  });

  test('app.signature() names a task this app does not define', async () => {
    const { app } = setup();
    const sig = app.signature('only.in.python', [1], { b: 2 }, { queue: 'py' });
    assert.deepEqual(sig.toJSON(), {
      task: 'only.in.python', args: [1], kwargs: { b: 2 }, options: { queue: 'py' }, subtask_type: null, immutable: false,
      chord_size: null,
    });
  });
});

describe('chain', () => {
  test('chain(add.s(1, 2), add.s(3), mul.s(10)) is 60, with parents up the chain', async () => {
    const { app, add, mul } = setup();
    await startWorker(app);
    const res = await chain(add.s(1, 2), add.s(3), mul.s(10)).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 60);
    assert.ok(res.parent, 'the last result has a parent');
    assert.equal(await res.parent!.get(), 6);
    assert.equal(await (res.parent as typeof res).parent!.get(), 3);
    assert.equal(await (await add.s(1, 2).pipe(add.s(3), mul.s(10)).delay()).get({ timeout: 5000 }), 60, 'pipe');
  });

  test('partial args go to the first step; nested chains are spliced', async () => {
    const { app, add, mul } = setup();
    await startWorker(app);
    const res = await chain(add.s(1), chain(add.s(2), mul.s(3))).applyAsync([4]);
    assert.equal(await res.get({ timeout: 5000 }), 21); // ((4+1)+2)*3
  });

  test('a group inside a chain becomes a chord: chain(add.s(1, 1), group(double.s(), double.s()), xsum.s()) is 8', async () => {
    const { app, add, double, xsum } = setup();
    await startWorker(app);
    const res = await chain(add.s(1, 1), group(double.s(), double.s()), xsum.s()).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 8);
  });

  test('a chord followed by more steps, and a group as the last step', async () => {
    const { app, add, double, xsum } = setup();
    await startWorker(app);
    const res = await chain(chord([add.s(1, 1), add.s(2, 2)], xsum.s()), double.s(), add.s(1)).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 13); // (2+4)*2+1
    const g = await chain(add.s(1, 2), group(double.s(), add.s(10))).applyAsync() as unknown as GroupResult<number>;
    assert.ok(g instanceof GroupResult);
    assert.deepEqual(await g.get({ timeout: 5000 }), [6, 13]);
  });

  test('options a link carries are kept: countdown, queue, its own link', async () => {
    const { app, add, double, record } = setup();
    await startWorker(app);
    const second = add.s(10).set({ countdown: 0.3 });
    second.link(record.s('linked'));
    const t0 = Date.now();
    const res = await chain(add.s(1, 1), second, double.s()).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 24);
    assert.ok(Date.now() - t0 >= 250, 'the second link waited for its countdown');
  });
});

describe('group', () => {
  test('a group of 100 gives its values in order; the GroupResult reports its state', async () => {
    const { app, add } = setup();
    await startWorker(app);
    const g = await group(Array.from({ length: 100 }, (_, i) => add.s(i, i))).applyAsync();
    assert.ok(g instanceof GroupResult);
    assert.equal(g.results.length, 100);
    assert.deepEqual(await g.get({ timeout: 10_000 }), Array.from({ length: 100 }, (_, i) => 2 * i));
    assert.equal(await g.ready(), true);
    assert.equal(await g.successful(), true);
    assert.equal(await g.failed(), false);
    assert.equal(await g.completedCount(), 100);
    assert.equal(await g.waiting(), false);
  });

  test('nested groups are unrolled; a chain inside a group runs whole', async () => {
    const { app, add, mul } = setup();
    await startWorker(app);
    const g = await group(add.s(1, 1), group(add.s(2, 2), add.s(3, 3)), chain(add.s(1, 1), mul.s(5))).applyAsync();
    assert.deepEqual(await g.get({ timeout: 5000 }), [2, 4, 6, 10]);
  });
});

describe('chord', () => {
  test('chord(group of 10 add.s(i, i), xsum.s()) is 90', async () => {
    const { app, add, xsum } = setup();
    await startWorker(app);
    const res = await chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), xsum.s()).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 90);
    assert.ok(res.parent, 'the body result has the header group as parent');
  });

  test('a chord whose header holds chains; an empty header runs the body with []', async () => {
    const { app, add, mul, xsum } = setup();
    await startWorker(app);
    const res = await chord([chain(add.s(1, 1), mul.s(10)), chain(add.s(2, 2), mul.s(10))], xsum.s()).applyAsync();
    assert.equal(await res.get({ timeout: 5000 }), 60);
    assert.equal(await (await chord([], xsum.s()).applyAsync()).get({ timeout: 5000 }), 0);
  });

  test('a failing header part fails the chord with ChordError and its errback runs once', async () => {
    const { app, add, boom, xsum, seen, record } = setup();
    await startWorker(app);
    const body = xsum.s();
    body.linkError(record.s('errback'));
    const res = await chord([add.s(1, 1), boom.s(7), add.s(2, 2)], body).applyAsync();
    await assert.rejects(res.get({ timeout: 5000 }), (e: unknown) => e instanceof TaskError && e.excType === 'ChordError'
      && /boom 7|RangeError/.test(e.message));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seen.filter((s) => s[1] === 'errback').length, 1, JSON.stringify(seen));
  });
});

describe('map, starmap, chunks and errbacks', () => {
  test('add.starmap([[1, 2], [3, 4]]) is [3, 7]; double.map([1, 2, 3]) is [2, 4, 6]', async () => {
    const { app, add, double } = setup();
    await startWorker(app);
    assert.deepEqual(await (await add.starmap([[1, 2], [3, 4]]).delay()).get({ timeout: 5000 }), [3, 7]);
    assert.deepEqual(await (await double.map([1, 2, 3]).delay()).get({ timeout: 5000 }), [2, 4, 6]);
  });

  test('add.chunks(10 pairs, 3) is a group of 4 starmaps', async () => {
    const { app, add } = setup();
    await startWorker(app);
    const g = await add.chunks(Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]), 3).applyAsync();
    assert.ok(g instanceof GroupResult);
    assert.equal(g.results.length, 4);
    assert.deepEqual(await g.get({ timeout: 5000 }), [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]);
  });

  test('errbacks: one taking (request, exc, traceback) runs in the worker; one taking a task id gets the id', async () => {
    const { app, boom, record } = setup();
    const calls: Array<{ id: unknown; exc: unknown }> = [];
    app.task('c.onErr3', (request: { id: string }, exc: Error, traceback: string | null) => {
      calls.push({ id: request.id, exc: exc.message });
      void traceback;
    });
    const sig = boom.s(3);
    sig.linkError(app.signature('c.onErr3'));
    sig.linkError(record.s());
    const res = await sig.delay();
    await startWorker(app);
    await assert.rejects(res.get({ timeout: 5000 }), TaskError);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(calls, [{ id: res.id, exc: 'boom 3' }]);
  });

  test('a chain link with its own link keeps it; chain errbacks reach every step', async () => {
    const { app, add, boom, seen, record } = setup();
    await startWorker(app);
    const c = chain(add.s(1, 1), boom.s(), add.s(1));
    c.linkError(record.s('chain-errback'));
    const res = await c.applyAsync();
    await assert.rejects(res.get({ timeout: 5000 }), TaskError);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seen.filter((s) => s[1] === 'chain-errback' && s[0] === res.parent?.id).length, 1, JSON.stringify(seen));
  });
});

test('typing: s() checks the prefix of the parameters (compile-time only)', () => {
  const { add } = setup();
  // @ts-expect-error a string is not a number
  add.s('x');
  // @ts-expect-error add takes two parameters
  add.si(1, 2, 3);
  add.s(1);
  void ({} as TaskContext);
});

describe('revoke from results', () => {
  test('AsyncResult.revoke() and GroupResult.revoke() end waiting tasks REVOKED; they never run', async () => {
    const { app, add, seen, record } = setup();
    const one = await record.s('one').set({ countdown: 2 }).delay();
    const g = await group(record.s('g1').set({ countdown: 2 }), record.s('g2').set({ countdown: 2 })).applyAsync();
    const kept = await add.s(1, 1).set({ countdown: 2 }).delay();
    await one.revoke();
    await g.revoke();
    await startWorker(app);
    assert.equal(await kept.get({ timeout: 10_000 }), 2);
    for (const r of [one, ...g.results]) assert.equal(await (r as typeof one).state(), 'REVOKED');
    assert.deepEqual(seen, [], 'revoked tasks never ran');
  });
});
