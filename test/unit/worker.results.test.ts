// The in-process worker on memory:// (the fast tier of test/integration/worker.*.test.ts, which run on real Redis):
// results and failures, kwargs, unknown tasks, ignoreResult, STARTED, custom states, result size, time limits,
// and malformed messages. Redis-specific promises (key layout, TTLs, bindings) stay in the Redis tier.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CeleriacError, NotJsonError, TaskError, TimeoutError, type TaskContext } from 'celeriac';
import { memoryWorkers } from '../helpers/memory-workers.ts';
import { quietLogger } from '../helpers/logs.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const { makeApp, startWorker } = memoryWorkers('wr');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('results', () => {
  test('delay() then get() returns the value; the record is SUCCESS with the task id', async () => {
    const app = makeApp();
    const add = app.task('t.add', async (a: number, b: number) => a + b);
    await startWorker(app);
    const res = await add.delay(5, 6);
    assert.equal(await res.get({ timeout: 10_000 }), 11);
    assert.equal(await res.state(), 'SUCCESS');
    assert.equal(await res.ready(), true);
    assert.equal(await res.successful(), true);
    const meta = await res.meta();
    assert.equal(meta?.status, 'SUCCESS');
    assert.equal(meta?.result, 11);
    assert.equal(await res.traceback(), null);
  });

  test('a handler that returns nothing stores null', async () => {
    const app = makeApp();
    const t = app.task('t.void', () => {});
    await startWorker(app);
    const res = await t.delay();
    assert.equal(await res.get({ timeout: 10_000 }), null);
    assert.equal(await res.state(), 'SUCCESS');
  });

  test('get() waits for a task sent before the worker starts', async () => {
    const app = makeApp();
    const mul = app.task('t.mul', (a: number, b: number) => a * b);
    const res = await mul.delay(6, 7);
    assert.equal(await res.state(), 'PENDING');
    const waiting = res.get({ timeout: 10_000 });
    await sleep(20);
    await startWorker(app);
    assert.equal(await waiting, 42);
  });

  test('get() times out with a TimeoutError while nobody runs the task', async () => {
    const app = makeApp();
    const t = app.task('t.never', () => 1);
    const res = await t.delay();
    await assert.rejects(res.get({ timeout: 100 }), (e: unknown) => e instanceof TimeoutError && e.code === 'E_TIMEOUT');
  });

  test('a failure is rethrown with the remote type, message and traceback', async () => {
    const app = makeApp();
    const boom = app.task('t.boom', (msg: string) => {
      throw new TypeError(msg);
    });
    await startWorker(app);
    const res = await boom.delay('bad input');
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => {
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
    assert.match((await res.traceback()) ?? '', /TypeError: bad input/);
    assert.equal(await res.get({ timeout: 10_000, propagate: false }).then((v: any) => v.exc_type), 'TypeError');
  });

  test('a rejected promise and a thrown non-Error are failures too', async () => {
    const app = makeApp();
    const rejects = app.task('t.rejects', async () => {
      await sleep(1);
      throw new RangeError('out of range');
    });
    const throwsString = app.task('t.str', () => {
      throw 'just a string';
    });
    await startWorker(app);
    await assert.rejects((await rejects.delay()).get({ timeout: 10_000 }),
      (e: unknown) => e instanceof TaskError && e.excType === 'ValueError' && /out of range/.test(e.message));
    await assert.rejects((await throwsString.delay()).get({ timeout: 10_000 }),
      (e: unknown) => e instanceof TaskError && e.excType === 'Exception' && /just a string/.test(e.message));
  });

  test('forget() deletes the record', async () => {
    const app = makeApp();
    const t = app.task('t.one', () => 1);
    await startWorker(app);
    const res = await t.delay();
    await res.get({ timeout: 10_000 });
    await res.forget();
    assert.equal(await res.state(), 'PENDING');
  });

  test('ignoreResult (task option and apply option) stores nothing; the task still runs', async () => {
    const app = makeApp();
    let ran = 0;
    const quiet = app.task('t.quiet', () => ++ran, { ignoreResult: true });
    const loud = app.task('t.loud', () => ++ran);
    const w = await startWorker(app);
    const a = await quiet.delay();
    const b = await loud.applyAsync([], {}, { ignoreResult: true });
    const c = await loud.delay();
    assert.equal(await c.get({ timeout: 10_000 }), 3);
    await w.idle();
    assert.equal(ran, 3);
    assert.equal(await a.meta(), null);
    assert.equal(await b.meta(), null);
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
    await assert.rejects((await bad.delay()).get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && /must be JSON/.test(e.message));
    assert.deepEqual(await (await t.delay({ when: new Date(0) })).get({ timeout: 10_000 }), { when: '1970-01-01T00:00:00.000Z' });
  });

  test('kwargs reach the handler as a trailing object, and the request is visible', async () => {
    const app = makeApp();
    const t = app.task('t.req', function (this: TaskContext, ...args: unknown[]) {
      return { args, id: this.request.id, task: this.request.task, retries: this.request.retries,
        queue: this.request.deliveryInfo.queue, redelivered: this.request.deliveryInfo.redelivered, name: this.name };
    });
    await startWorker(app);
    const res = await t.applyAsync([1], { x: 2 });
    assert.deepEqual(await res.get({ timeout: 10_000 }),
      { args: [1, { x: 2 }], id: res.id, task: 't.req', retries: 0, queue: 'celery', redelivered: false, name: 't.req' });
    const noKwargs = await t.applyAsync([1, 2]);
    assert.deepEqual(((await noKwargs.get({ timeout: 10_000 })) as { args: unknown[] }).args, [1, 2], 'no trailing {} without kwargs');
    const onlyKwargs = await t.applyAsync([], { y: 3 }, {});
    assert.deepEqual(((await onlyKwargs.get({ timeout: 10_000 })) as { args: unknown[] }).args, [{ y: 3 }]);
  });

  test('unknown task: FAILURE with NotRegistered, worker keeps going', async () => {
    const app = makeApp();
    const ok = app.task('t.ok', () => 'ok');
    const w = await startWorker(app);
    const res = await app.sendTask('t.nobody.knows', [1]);
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'NotRegistered'
      && e.excModule === 'celery.exceptions' && e.message.includes('t.nobody.knows'));
    assert.equal(await (await ok.delay()).get({ timeout: 10_000 }), 'ok');
    await w.idle();
    assert.equal(w.size.reserved, 0, 'the unknown message was acked, not held');
    assert.equal(await (await app.broker()).queueLength('celery'), 0);
  });
});

describe('states while running', () => {
  test('trackStarted stores STARTED (with hostname and pid) while the task runs', async () => {
    const app = makeApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = app.task('t.tracked', async () => {
      await gate;
      return 'ok';
    }, { trackStarted: true });
    const untracked = app.task('t.untracked', async () => {
      await gate;
      return 'ok';
    });
    const w = await startWorker(app, { hostname: 'mem@box' });
    const res = await t.delay();
    const other = await untracked.delay();
    await until(async () => (await res.state()) === 'STARTED', 'STARTED');
    assert.deepEqual(await res.info(), { pid: process.pid, hostname: 'mem@box' });
    assert.equal(w.size.running, 2);
    assert.equal(await other.state(), 'PENDING', 'no STARTED without trackStarted');
    release();
    assert.equal(await res.get({ timeout: 10_000 }), 'ok');
    assert.equal(await other.get({ timeout: 10_000 }), 'ok');
  });

  test('taskTrackStarted on the app applies to every task', async () => {
    const app = makeApp({ taskTrackStarted: true });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = app.task('t.tracked2', async () => {
      await gate;
      return 1;
    });
    await startWorker(app);
    const res = await t.delay();
    await until(async () => (await res.state()) === 'STARTED', 'STARTED');
    release();
    assert.equal(await res.get({ timeout: 10_000 }), 1);
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
    await until(async () => (await res.state()) === ('PROGRESS' as string), 'PROGRESS');
    assert.deepEqual(await res.info(), { done: 3, total: 10 });
    assert.equal(await res.ready(), false);
    release();
    assert.equal(await res.get({ timeout: 10_000 }), 'ok');
    assert.equal(await res.state(), 'SUCCESS');
  });
});

describe('limits', () => {
  test('maxMessageBytes limits what the caller sent, not its base64 envelope: 3.9 KB of arguments pass a 4 KB limit', async () => {
    const app = makeApp({ maxMessageBytes: 4096 });
    const echo = app.task('t.echo', (s: string) => s.length);
    const arg = 'y'.repeat(4096 - 200); // the body is [[arg], {}, {embed}]: under 4096 bytes as JSON, ~5.3 KB as base64
    await startWorker(app);
    assert.equal(await (await echo.delay(arg)).get({ timeout: 10_000 }), arg.length);
    await assert.rejects(echo.delay('y'.repeat(4096)), (e: unknown) => e instanceof CeleriacError && e.code === 'E_TOO_LARGE'
      && /carries \d+ bytes of arguments, over maxMessageBytes \(4096\)/.test(e.message));
  });

  test('a message over maxMessageBytes is refused at call time; a result over maxResultBytes is a FAILURE', async () => {
    const app = makeApp({ maxMessageBytes: 4096, maxResultBytes: 4096 });
    const echo = app.task('t.echo', (s: string) => s);
    const grow = app.task('t.grow', (n: number) => 'x'.repeat(n));
    await assert.rejects(echo.delay('y'.repeat(10_000)), (e: unknown) => e instanceof CeleriacError && e.code === 'E_TOO_LARGE');
    const w = await startWorker(app);
    assert.equal(await (await grow.delay(100)).get({ timeout: 10_000 }), 'x'.repeat(100));
    const big = await grow.delay(10_000);
    // the worker's E_TOO_LARGE is stored as a CeleriacError (the code itself does not travel; the message does)
    await assert.rejects(big.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'CeleriacError'
      && e.excModule === 'celeriac' && /result of t\.grow is 10002 bytes, over maxResultBytes \(4096\)/.test(e.message));
    assert.equal(await big.state(), 'FAILURE');
    assert.equal(await (await grow.delay(10)).get({ timeout: 10_000 }), 'x'.repeat(10), 'the worker keeps going');
    assert.equal(w.state, 'running');
  });

  test('timeLimit: the task fails with TimeLimitExceeded and its signal fires', async () => {
    const app = makeApp();
    let aborted: unknown = null;
    const slow = app.task('t.slow', function (this: TaskContext) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve('too late'), 10_000);
        this.signal.addEventListener('abort', () => {
          aborted = this.signal.reason;
          clearTimeout(timer);
          resolve('after abort');
        });
      });
    }, { timeLimit: 0.1 });
    const fast = app.task('t.fast', () => 'fast', { timeLimit: 5 });
    await startWorker(app);
    const started = Date.now();
    const res = await slow.delay();
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'TimeLimitExceeded');
    assert.ok(Date.now() - started >= 100, 'not before the limit');
    assert.equal(await res.state(), 'FAILURE', 'what the handler returns after the limit does not count');
    assert.equal((aborted as Error | null)?.name, 'TimeLimitExceeded');
    assert.equal(await (await fast.delay()).get({ timeout: 10_000 }), 'fast', 'a task within its limit succeeds');
  });

  test('timeLimit as an apply option', async () => {
    const app = makeApp();
    const wait = app.task('t.wait', function (this: TaskContext, ms: number) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(ms), ms);
        this.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve(null);
        });
      });
    });
    await startWorker(app);
    await assert.rejects((await wait.applyAsync([5000], {}, { timeLimit: 0.1 })).get({ timeout: 10_000 }),
      (e: unknown) => e instanceof TaskError && e.excType === 'TimeLimitExceeded');
    assert.equal(await (await wait.delay(10)).get({ timeout: 10_000 }), 10);
  });

  test('softTimeLimit fires the signal with SoftTimeLimitExceeded; the task can still finish by itself', async () => {
    const app = makeApp();
    const soft = app.task('t.soft', function (this: TaskContext) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ reason: 'not aborted' }), 10_000);
        this.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          const reason = this.signal.reason as Error;
          resolve({ reason: reason.name, message: reason.message, at: Date.now() });
        });
      });
    }, { softTimeLimit: 0.1 });
    await startWorker(app);
    // measured from before the call: timers count from the event loop's clock, which may lag the handler's start
    const sent = Date.now();
    const out = (await (await soft.delay()).get({ timeout: 10_000 })) as { reason: string; message: string; at: number };
    assert.equal(out.reason, 'SoftTimeLimitExceeded');
    assert.match(out.message, /soft time limit/);
    assert.ok(out.at - sent >= 100, `fired ${out.at - sent} ms after the call, not before the limit`);
  });

  test('softTimeLimit then timeLimit: a task that ignores the soft signal fails at the hard limit', async () => {
    const app = makeApp();
    const reasons: string[] = [];
    const stubborn = app.task('t.stubborn', function (this: TaskContext) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve('never'), 10_000);
        this.signal.addEventListener('abort', () => {
          reasons.push((this.signal.reason as Error).name);
          clearTimeout(timer);
          // ignores the soft limit: keeps going until the hard limit
          setTimeout(() => resolve('late'), 1000).unref();
        });
      });
    }, { softTimeLimit: 0.05, timeLimit: 0.2 });
    await startWorker(app);
    await assert.rejects((await stubborn.delay()).get({ timeout: 10_000 }),
      (e: unknown) => e instanceof TaskError && e.excType === 'TimeLimitExceeded');
    assert.deepEqual(reasons, ['SoftTimeLimitExceeded'], 'the signal fires once, at the soft limit');
  });
});

describe('malformed messages', () => {
  test('a raw non-JSON message is dead-lettered and the worker keeps going', async () => {
    const app = makeApp();
    const add = app.task('m.add', (a: number, b: number) => a + b);
    const lines: string[] = [];
    const w = await startWorker(app, { logger: quietLogger(lines) });
    const broker = await app.broker();
    await broker.publish([{ queue: 'celery', priority: 0, raw: 'not json' }]);
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5, 'the worker still runs good tasks');
    await w.idle();
    const dead = await broker.deadLetters(10);
    assert.equal(dead.length, 1);
    assert.equal(dead[0].raw, 'not json');
    assert.equal(dead[0].queue, 'celery');
    assert.match(dead[0].reason, /JSON/);
    assert.ok(!Number.isNaN(Date.parse(dead[0].at)));
    assert.equal(lines.filter((l) => /ERROR/.test(l) && /unreadable message/i.test(l)).length, 1, 'one log line');
    assert.equal(await broker.queueLength('celery'), 0);
    assert.equal(w.state, 'running');
  });

  test('hostile messages (fixture s12 and fuzzed ones) are dead-lettered with a reason, FAILURE is stored by id', async () => {
    const s12 = loadFixture('s12_handcrafted_messages_vs_python_worker.json').cases;
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const envelope = (over: Record<string, unknown>, id: string): string => JSON.stringify({
      body: b64('[[2, 3], {}, {}]'), 'content-type': 'application/json', 'content-encoding': 'utf-8',
      headers: { task: 'm.add', id },
      properties: { delivery_tag: `tag-${id}`, body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'celery' } },
      ...over,
    });
    const app = makeApp({ maxMessageBytes: 64 * 1024 });
    const add = app.task('m.add', (a: number, b: number) => a + b);
    const rename = (raw: string) => raw.replace('celery_peer.add', 'm.add');
    const cases: Array<{ name: string; raw: string; id: string | null; reason: RegExp }> = [
      { name: 'm3 no delivery_tag', raw: rename(JSON.stringify(s12.m3_no_delivery_tag.message)), id: 'min-3', reason: /delivery_tag/ },
      { name: 'm4 no delivery_info', raw: rename(JSON.stringify(s12.m4_no_delivery_info.message)), id: 'min-4', reason: /delivery_info/ },
      { name: 'm5 body without embed', raw: rename(JSON.stringify(s12.m5_body_without_embed.message)), id: 'min-5', reason: /embed|3/ },
      { name: 'm6 no content type', raw: rename(JSON.stringify(s12.m6_no_content_type.message)), id: 'min-6', reason: /content.type/i },
      { name: 'm9 yaml', raw: rename(JSON.stringify(s12.m9_not_accepted_content_type.message)), id: 'min-9', reason: /yaml/ },
      { name: 'pickle', raw: envelope({ 'content-type': 'application/x-python-serialize', body: b64('cos\nsystem\n(S"id"\ntR.') }, 'pk-1'), id: 'pk-1', reason: /python-serialize|not accepted/ },
      { name: 'random bytes', raw: '\x00\xff\x13garbage{{', id: null, reason: /JSON/ },
      { name: 'truncated JSON', raw: envelope({}, 'tr-1').slice(0, 60), id: null, reason: /JSON/ },
      { name: 'array envelope', raw: '[1,2,3]', id: null, reason: /JSON object|properties/ },
      { name: 'body not base64 JSON', raw: envelope({ body: b64('{not json') }, 'bj-1'), id: 'bj-1', reason: /JSON/ },
      { name: 'args not a list', raw: envelope({ body: b64('[{"a": 1}, {}, {}]') }, 'al-1'), id: 'al-1', reason: /args/ },
      { name: 'retries wrong type', raw: envelope({ headers: { task: 'm.add', id: 'rt-1', retries: 'many' } }, 'rt-1'), id: 'rt-1', reason: /retries/ },
      { name: 'eta not a date', raw: envelope({ headers: { task: 'm.add', id: 'et-1', eta: 'tomorrow-ish' } }, 'et-1'), id: 'et-1', reason: /eta/ },
      { name: 'task not a string', raw: envelope({ headers: { task: 42, id: 'tn-1' } }, 'tn-1'), id: 'tn-1', reason: /task/ },
      { name: 'huge body', raw: envelope({ body: b64(JSON.stringify([['x'.repeat(100_000)], {}, {}])) }, 'hg-1'), id: 'hg-1', reason: /maxMessageBytes/ },
    ];
    const broker = await app.broker();
    await broker.publish(cases.map((c) => ({ queue: 'celery', priority: 0, raw: c.raw })));
    const lines: string[] = [];
    const w = await startWorker(app, { logger: quietLogger(lines) });
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5, 'the worker still runs good tasks');
    await w.idle();
    const dead = await broker.deadLetters(100);
    assert.equal(dead.length, cases.length, `dead letters: ${JSON.stringify(dead.map((d) => d.reason))}`);
    for (const c of cases) {
      // a dead letter keeps a big message's head only, with the size of all of it
      const entry = dead.find((d) => d.raw === c.raw || (d.truncated && c.raw.startsWith(d.raw) && d.size === Buffer.byteLength(c.raw)));
      assert.ok(entry, `${c.name} is in the dead-letter list with its raw message`);
      assert.match(entry.reason, c.reason, `${c.name}: ${entry.reason}`);
      assert.equal(entry.queue, 'celery');
      if (c.id) {
        const res = app.AsyncResult(c.id);
        await until(async () => (await res.state()) === 'FAILURE', `${c.name} stored FAILURE`);
        assert.equal(((await res.info()) as { exc_type: string }).exc_type, 'MalformedMessage');
      }
    }
    const errorLines = lines.filter((l) => /ERROR/.test(l) && /(invalid|unreadable) task message|unreadable message/i.test(l));
    assert.equal(errorLines.length, cases.length, 'one log line per bad message');
    assert.equal(w.size.reserved, 0, 'nothing left reserved');
    assert.equal(await broker.queueLength('celery'), 0);
    assert.equal(w.state, 'running');
  });
});

describe('limits set at run time (remote control)', () => {
  test('setTimeLimit() applies to the next runs; an unknown task is refused', async () => {
    const app = makeApp();
    const slow = app.task('t.slow', async function (this: TaskContext) {
      await new Promise((r) => setTimeout(r, 3000));
      return 'done';
    });
    const w = await startWorker(app);
    assert.equal(w.setTimeLimit('t.nope', null, 1), false);
    assert.equal(w.setTimeLimit('t.slow', null, 0.3), true);
    await assert.rejects((await slow.delay()).get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && e.excType === 'TimeLimitExceeded');
  });
});

describe('a blocked event loop', () => {
  test('is logged as a warning naming the running task, and the worst stall is kept for inspect stats', async () => {
    const app = makeApp();
    const block = app.task('t.block', () => {
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        // synchronous work: nothing else runs on the loop meanwhile
      }
      return 'unblocked';
    });
    const lines: string[] = [];
    const w = await startWorker(app, { logger: quietLogger(lines) });
    const res = await block.delay();
    assert.equal(await res.get({ timeout: 10_000 }), 'unblocked');
    await new Promise((r) => setTimeout(r, 300));
    const warning = lines.find((l) => /event loop was blocked for \d+ ms/.test(l));
    assert.ok(warning, lines.join('\n'));
    assert.ok(warning.includes(`t.block[${res.id}]`), warning);
    const worst = w.worstStall();
    assert.ok(worst && worst.ms >= 1000 && worst.tasks.includes(`t.block[${res.id}]`), JSON.stringify(worst));
  });
});
