// Options are checked where they enter: applyAsync(args, kwargs, options), sendTask, applyMany and app.task. No
// guessing between kwargs and options; unknown names and bad values are coded errors, and nothing is published.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryApp } from 'celeriac/testing';
import { CeleriacError, ErrorCode, type Celeriac } from 'celeriac';
import { decodeTaskMessage, type TaskMessage } from '../../src/protocol/index.ts';

const open: Celeriac[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((a) => a.close()));
});

function makeApp(): Celeriac {
  const app = memoryApp('opts');
  open.push(app);
  return app;
}

/** An assert.rejects/throws matcher: a CeleriacError with this code whose message matches. */
function coded(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CeleriacError, `expected a CeleriacError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  };
}

async function queued(app: Celeriac, queue = 'celery'): Promise<number> {
  return (await app.broker()).queueLength(queue);
}

/** Take the messages waiting on `queue`, decoded. */
async function take(app: Celeriac, queue = 'celery'): Promise<TaskMessage[]> {
  const { deliveries } = await (await app.broker()).reserve([queue], 100, 0);
  return deliveries.map((d) => decodeTaskMessage(d.raw));
}

describe('applyAsync(args, kwargs, options)', () => {
  test('a misspelt option is E_BAD_OPTION with "did you mean", and nothing is published', async () => {
    const app = makeApp();
    const add = app.task('t.add', (a: number, b: number) => a + b);
    await assert.rejects(add.applyAsync([1, 2], {}, { countdwn: 10 } as never),
      coded(ErrorCode.BadOption, /unknown option "countdwn" \(did you mean "countdown"\?\)/));
    await assert.rejects(add.applyAsync([1, 2], {}, { priorty: 3 } as never), coded(ErrorCode.BadOption, /did you mean "priority"/));
    await assert.rejects(add.applyAsync([1, 2], {}, { zzzzzzzzzz: 1 } as never),
      coded(ErrorCode.BadOption, /unknown option "zzzzzzzzzz"; known options: taskId, queue/));
    assert.equal(await queued(app), 0);
  });

  test('options only in the second argument, with no third: E_AMBIGUOUS_OPTIONS saying where they go', async () => {
    const app = makeApp();
    const add = app.task('t.add', (a: number, b: number) => a + b);
    await assert.rejects(add.applyAsync([1, 2], { countdown: 10 }),
      coded(ErrorCode.AmbiguousOptions, /applyAsync\(args, \{\}, \{"countdown":10\}\)/));
    await assert.rejects(add.applyAsync([1, 2], { queue: 'math', priority: 3 }), coded(ErrorCode.AmbiguousOptions));
    assert.equal(await queued(app), 0);
    assert.equal(await queued(app, 'math'), 0);
  });

  test('a kwarg named like an option is sent as a kwarg when an options argument is given', async () => {
    const app = makeApp();
    const t = app.task('t.kw', (opts?: { countdown: number }) => opts?.countdown);
    await t.applyAsync([], { countdown: 10 }, {});
    const [m] = await take(app);
    assert.deepEqual(m.kwargs, { countdown: 10 });
    assert.equal(m.eta, null);
  });

  test('kwargs with keys that are not all option names are kwargs', async () => {
    const app = makeApp();
    const t = app.task('t.kw', (x: number) => x);
    await t.applyAsync([1], { x: 2 });
    await t.applyAsync([1], { x: 2, queue: 'not-an-option-here' });
    await t.applyAsync([1], {});
    await t.applyAsync([1]);
    await t.delay(1);
    const msgs = await take(app);
    assert.equal(msgs.length, 5);
    assert.deepEqual(msgs.map((m) => m.kwargs), [{ x: 2 }, { x: 2, queue: 'not-an-option-here' }, {}, {}, {}]);
  });

  test('valid options in the third argument: countdown, queue, priority, expires, eta, taskId', async () => {
    const app = makeApp();
    const t = app.task('t.v', () => 1);
    const before = Date.now();
    const r1 = await t.applyAsync([], {}, { countdown: 10, expires: 60, taskId: 'my-id-1' });
    const afterFirst = Date.now();
    assert.equal(r1.id, 'my-id-1');
    const eta = new Date(Date.now() + 3_600_000);
    const expires = new Date(Date.now() + 7_200_000);
    await t.applyAsync([], {}, { queue: 'math', priority: 7, eta, expires: expires.toISOString() });
    // undefined values count as absent (the CLI passes every option it has, set or not)
    await t.applyAsync([], {}, { countdown: undefined, queue: undefined });
    const [m1, m3] = await take(app);
    assert.equal(m1.id, 'my-id-1');
    // countdown and expires count from the call: bracketed by the clock before and after it, however long it took
    const within = (d: Date | null, offset: number) =>
      d !== null && d.getTime() >= before + offset && d.getTime() <= afterFirst + offset;
    assert.ok(within(m1.eta, 10_000), `eta ${m1.eta?.toISOString()} (called between ${before} and ${afterFirst})`);
    assert.ok(within(m1.expires, 60_000), `expires ${m1.expires?.toISOString()}`);
    assert.equal(m3.eta, null);
    const [m2] = await take(app, 'math');
    assert.equal(m2.eta?.getTime(), eta.getTime());
    assert.equal(m2.expires?.getTime(), expires.getTime());
    assert.equal(m2.properties.priority, 7);
  });

  test('a bad value is E_BAD_OPTION naming the option, and nothing is published', async () => {
    const app = makeApp();
    const t = app.task('t.v', () => 1);
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ countdown: Number.NaN }, /countdown must be a finite number/],
      [{ countdown: Infinity }, /countdown must be a finite number/],
      [{ countdown: '10' }, /countdown must be a finite number/],
      [{ priority: 256 }, /priority must be a whole number from 0 to 255/],
      [{ priority: 1.5 }, /priority/],
      [{ priority: Number.NaN }, /priority/],
      [{ priority: '3' }, /priority/],
      [{ priority: -1 }, /priority/],
      [{ expires: Number.POSITIVE_INFINITY }, /expires must be/],
      [{ expires: 'soon' }, /expires must be/],
      [{ eta: 'tomorrow-ish' }, /eta must be a valid Date or date string/],
      [{ eta: new Date(Number.NaN) }, /eta must be/],
      [{ eta: 12 }, /eta must be/],
      [{ queue: '' }, /queue must be a non-empty string/],
      [{ queue: 3 }, /queue/],
      [{ taskId: '' }, /taskId/],
      [{ headers: [] }, /headers must be an object/],
      [{ ignoreResult: 'yes' }, /ignoreResult must be true or false/],
      [{ timeLimit: 0 }, /timeLimit must be a positive number/],
      [{ softTimeLimit: -1 }, /softTimeLimit/],
      [{ retries: -1 }, /retries must be a whole number/],
    ];
    for (const [options, message] of bad) {
      await assert.rejects(t.applyAsync([], {}, options as never), coded(ErrorCode.BadOption, message), JSON.stringify(options));
    }
    await assert.rejects(t.applyAsync([], {}, [] as never), coded(ErrorCode.BadOption, /options must be an object/));
    assert.equal(await queued(app), 0);
    await t.applyAsync([], {}, null as never); // null is no options, as null kwargs are no kwargs
    assert.equal(await queued(app), 1);
  });
});

describe('sendTask(name, args, kwargs, options)', () => {
  test('checked as applyAsync is: unknown name, bad value, options-only kwargs; nothing is published', async () => {
    const app = makeApp();
    await assert.rejects(app.sendTask('py.add', [1], {}, { qeue: 'x' } as never),
      coded(ErrorCode.BadOption, /py\.add: unknown option "qeue" \(did you mean "queue"\?\)/));
    await assert.rejects(app.sendTask('py.add', [1], {}, { countdown: Number.NaN }), coded(ErrorCode.BadOption, /countdown/));
    await assert.rejects(app.sendTask('py.add', [1], { countdown: 5 }),
      coded(ErrorCode.AmbiguousOptions, /sendTask\("py\.add", args, \{\}, \{"countdown":5\}\)/));
    assert.equal(await queued(app), 0);
  });

  test('valid options and kwargs are sent', async () => {
    const app = makeApp();
    await app.sendTask('py.add', [1], { countdown: 5 }, {});
    await app.sendTask('py.add', [2], { fail_times: 2, countdown: 1 });
    await app.sendTask('py.add', [3], {}, { queue: 'py', priority: 3, taskId: 'py-3' });
    await app.sendTask('py.add', [4]);
    const msgs = await take(app);
    assert.deepEqual(msgs.map((m) => [m.args, m.kwargs, m.eta]),
      [[[1], { countdown: 5 }, null], [[2], { fail_times: 2, countdown: 1 }, null], [[4], {}, null]]);
    const [py] = await take(app, 'py');
    assert.equal(py.id, 'py-3');
    assert.equal(py.properties.priority, 3);
  });
});

describe('applyMany', () => {
  test('every call is checked before any is published', async () => {
    const app = makeApp();
    const t = app.task('t.m', (x: number) => x);
    await assert.rejects(t.applyMany([[1], { args: [2], options: { countdwn: 1 } as never }]),
      coded(ErrorCode.BadOption, /call \[1\]: unknown option "countdwn" \(did you mean "countdown"\?\)/));
    await assert.rejects(t.applyMany([[1], { args: [2], option: { countdown: 1 } } as never]),
      coded(ErrorCode.BadOption, /unknown key "option" \(did you mean "options"\?\)/));
    await assert.rejects(t.applyMany([{ args: [2], options: { priority: 1.5 } }]), coded(ErrorCode.BadOption, /priority/));
    await assert.rejects(t.applyMany({ args: [1] } as never), coded(ErrorCode.BadOption, /takes an array of calls/));
    await assert.rejects(t.applyMany([null] as never), coded(ErrorCode.BadOption, /call \[0\] must be an argument list/));
    assert.equal(await queued(app), 0);
    await t.applyMany([[1], { args: [2], kwargs: { countdown: 3 } }, { args: [3], options: { queue: 'm' } }]);
    assert.equal(await queued(app), 2);
    assert.equal(await queued(app, 'm'), 1);
  });
});

describe('app.task(name, handler, options)', () => {
  test('an unknown task option is E_BAD_OPTION with "did you mean", and the task is not registered', () => {
    const app = makeApp();
    assert.throws(() => app.task('t.a', () => 1, { max_retries: 3 } as never),
      coded(ErrorCode.BadOption, /task "t\.a": unknown task option "max_retries" \(did you mean "maxRetries"\?\)/));
    assert.throws(() => app.task('t.a', () => 1, { acks_late: true } as never), coded(ErrorCode.BadOption, /did you mean "acksLate"/));
    assert.throws(() => app.task('t.a', () => 1, { countdown: 3 } as never), coded(ErrorCode.BadOption, /unknown task option "countdown"/));
    assert.equal(app.tasks.has('t.a'), false);
  });

  test('a task option with a bad value is E_BAD_OPTION; valid ones are accepted', () => {
    const app = makeApp();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ maxRetries: -1 }, /maxRetries/],
      [{ maxRetries: 1.5 }, /maxRetries/],
      [{ priority: 256 }, /priority must be a whole number from 0 to 255/],
      [{ priority: -1 }, /priority/],
      [{ timeLimit: 0 }, /timeLimit must be a positive number/],
      [{ queue: '' }, /queue/],
      [{ autoretryFor: Error }, /autoretryFor must be an array of error classes \(\[MyError\], not MyError alone\), or a predicate.*got the function Error/],
      [{ autoretryFor: ['Error'] }, /autoretryFor/],
      [{ retryBackoff: 'yes' }, /retryBackoff/],
      [{ acksLate: 1 }, /acksLate must be true or false/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => app.task('t.b', () => 1, options as never), coded(ErrorCode.BadOption, message), JSON.stringify(options));
    }
    assert.throws(() => app.task('t.b', () => 1, null as never), coded(ErrorCode.BadOption, /must be an object/));
    assert.throws(() => app.task('t.b', 'not a function' as never), coded(ErrorCode.BadOption, /handler must be a function/));
    assert.equal(app.tasks.has('t.b'), false);
    class Flaky extends Error {}
    const ok = app.task('t.ok', () => 1, {
      maxRetries: null, defaultRetryDelay: 0, autoretryFor: [Flaky], retryBackoff: 0.5, retryBackoffMax: 10,
      retryJitter: false, acksLate: true, ignoreResult: false, trackStarted: true, queue: 'q', priority: 9,
      timeLimit: 30, softTimeLimit: 20,
    });
    assert.equal(ok.options.queue, 'q');
    app.task('t.ok2', () => 1, { autoretryFor: (err) => err instanceof Flaky, retryBackoff: true, maxRetries: 0 });
  });
});
