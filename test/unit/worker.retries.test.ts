// Retries on memory:// (the fast tier of the retry cases in test/integration/worker.tasks.test.ts): this.retry() with
// a countdown, maxRetries (task option, per call, and null = for ever), autoretryFor with backoff.
// Countdowns are kept short (0.05–0.5 s); lower bounds on the gaps are strict, upper bounds are generous.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskError, type TaskContext } from 'celeriac';
import { memoryWorkers } from '../helpers/memory-workers.ts';
import { quietLogger } from '../helpers/logs.ts';

const { makeApp, startWorker } = memoryWorkers('rt');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const gapsOf = (times: number[]) => times.slice(1).map((t, i) => t - times[i]);

describe('this.retry()', () => {
  test('retry({ countdown }) re-runs under the same id with retries+1 and the same arguments, RETRY stored in between', async () => {
    const app = makeApp();
    const seen: Array<{ retries: number; id: string; args: unknown[]; parentId: string | null; at: number }> = [];
    const t = app.task('t.flaky', function (this: TaskContext, ...args: unknown[]) {
      seen.push({ retries: this.request.retries, id: this.request.id, args, parentId: this.request.parentId, at: Date.now() });
      if (this.request.retries < 2) throw this.retry({ countdown: 0.2, exc: new Error(`attempt ${this.request.retries}`) });
      return 'done';
    });
    await startWorker(app);
    const res = await t.applyAsync([1, 'a'], { k: true });
    let retryMeta: unknown = null;
    const watch = (async () => {
      for (let i = 0; i < 1000 && retryMeta === null; i++) {
        const meta = await res.meta();
        if (meta?.status === 'RETRY') retryMeta = meta;
        else if (meta?.status === 'SUCCESS') return;
        await sleep(2);
      }
    })();
    assert.equal(await res.get({ timeout: 10_000 }), 'done');
    await watch;
    assert.deepEqual(seen.map((s) => s.retries), [0, 1, 2]);
    assert.ok(seen.every((s) => s.id === res.id), 'same task id');
    assert.ok(seen.every((s) => JSON.stringify(s.args) === JSON.stringify([1, 'a', { k: true }])), 'same args and kwargs');
    assert.equal(seen[0].parentId, null);
    assert.equal(seen[1].parentId, res.id, 'a retry names the task it retries as parent');
    for (const gap of gapsOf(seen.map((s) => s.at))) assert.ok(gap >= 200, `retry ran ${gap} ms after the last run, countdown 0.2 s`);
    const meta = retryMeta as { status: string; result: { exc_type: string; exc_message: unknown[] }; traceback: string | null } | null;
    assert.ok(meta, 'RETRY state was stored');
    assert.equal(meta.result.exc_type, 'Exception');
    assert.match(String(meta.result.exc_message[0]), /^attempt [01]$/);
    assert.match(meta.traceback ?? '', /attempt [01]/);
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
    assert.equal(await res.state(), 'FAILURE');
  });

  test('without exc, exhausted retries fail with MaxRetriesExceededError', async () => {
    const app = makeApp();
    let runs = 0;
    const t = app.task('t.noexc', function (this: TaskContext) {
      runs++;
      throw this.retry({ countdown: 0.05 });
    }, { maxRetries: 1 });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 10_000 }),
      (e: unknown) => e instanceof TaskError && e.excType === 'MaxRetriesExceededError');
    assert.equal(runs, 2);
  });

  test('the default is 3 retries (Celery\'s max_retries)', async () => {
    const app = makeApp();
    let runs = 0;
    const t = app.task('t.default', function (this: TaskContext) {
      runs++;
      throw this.retry({ countdown: 0.05, exc: new Error('nope') });
    });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 10_000 }), /nope/);
    assert.equal(runs, 4);
  });

  test('retry({ maxRetries }) overrides the task option for that call', async () => {
    const app = makeApp();
    let runs = 0;
    const t = app.task('t.override', function (this: TaskContext) {
      runs++;
      throw this.retry({ countdown: 0.05, maxRetries: 1, exc: new Error('once more only') });
    }, { maxRetries: 10 });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 10_000 }), /once more only/);
    assert.equal(runs, 2);
  });

  test('maxRetries: null retries for ever through this.retry() (5 retries succeed)', async () => {
    const app = makeApp();
    const seen: number[] = [];
    const t = app.task('t.forever', function (this: TaskContext) {
      seen.push(this.request.retries);
      if (this.request.retries < 5) throw this.retry({ countdown: 0.05, exc: new Error(`attempt ${this.request.retries}`) });
      return this.request.retries;
    }, { maxRetries: null });
    await startWorker(app);
    assert.equal(await (await t.delay()).get({ timeout: 10_000 }), 5);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
  });

  test('retry({ eta }) runs no earlier than the eta', async () => {
    const app = makeApp();
    const times: number[] = [];
    let eta = 0;
    const t = app.task('t.eta', function (this: TaskContext) {
      times.push(Date.now());
      if (this.request.retries === 0) {
        eta = Date.now() + 300;
        throw this.retry({ eta: new Date(eta) });
      }
      return this.request.retries;
    });
    await startWorker(app);
    assert.equal(await (await t.delay()).get({ timeout: 10_000 }), 1);
    assert.ok(times[1] >= eta, `ran ${eta - times[1]} ms before the eta`);
  });
});

describe('autoretryFor', () => {
  test('autoretryFor with exponential backoff, capped', async () => {
    const app = makeApp();
    class Flaky extends Error {}
    const times: number[] = [];
    const t = app.task('t.auto', function (this: TaskContext) {
      times.push(Date.now());
      if (this.request.retries < 3) throw new Flaky('not yet');
      return this.request.retries;
    }, { autoretryFor: [Flaky], retryBackoff: 0.1, retryBackoffMax: 0.25, retryJitter: false, maxRetries: 5 });
    const lines: string[] = [];
    await startWorker(app, { logger: quietLogger(lines) });
    assert.equal(await (await t.delay()).get({ timeout: 10_000 }), 3);
    // 0.1·2^0, 0.1·2^1, then capped at 0.25 (uncapped: 0.4): the countdowns the worker chose, from its log
    const countdowns = lines.flatMap((l) => /t\.auto\[.*\] retry: Retry in ([\d.]+)s/.exec(l)?.[1] ?? []).map(Number);
    assert.deepEqual(countdowns, [0.1, 0.2, 0.25]);
    // and they were waited: lower bounds strict; the upper bounds only catch a backoff that is not applied at all
    const gaps = gapsOf(times);
    assert.ok(gaps[0] >= 100 && gaps[0] < 5000, `gap0 ${gaps[0]}`);
    assert.ok(gaps[1] >= 200 && gaps[1] < 5000, `gap1 ${gaps[1]}`);
    assert.ok(gaps[2] >= 250 && gaps[2] < 5000, `gap2 ${gaps[2]}`);
  });

  test('autoretryFor stops at maxRetries; the last error is the failure', async () => {
    const app = makeApp();
    class Flaky extends Error {}
    let runs = 0;
    const t = app.task('t.auto3', () => {
      runs++;
      throw new Flaky(`run ${runs}`);
    }, { autoretryFor: [Flaky], defaultRetryDelay: 0.05, maxRetries: 2 });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskError && /run 3/.test(e.message));
    assert.equal(runs, 3);
  });

  test('autoretryFor with a predicate, and maxRetries: null retrying more than 3 times', async () => {
    const app = makeApp();
    let runs = 0;
    const t = app.task('t.auto4', function (this: TaskContext) {
      runs++;
      if (this.request.retries < 5) throw new Error('transient');
      return 'finally';
    }, { autoretryFor: (err) => (err as Error).message === 'transient', defaultRetryDelay: 0.05, maxRetries: null });
    await startWorker(app);
    assert.equal(await (await t.delay()).get({ timeout: 10_000 }), 'finally');
    assert.equal(runs, 6);
  });

  test('errors not in autoretryFor fail at once', async () => {
    const app = makeApp();
    class Flaky extends Error {}
    let runs = 0;
    const t = app.task('t.auto2', () => {
      runs++;
      throw new Error('fatal');
    }, { autoretryFor: [Flaky], defaultRetryDelay: 0.05 });
    await startWorker(app);
    await assert.rejects((await t.delay()).get({ timeout: 10_000 }), /fatal/);
    assert.equal(runs, 1);
  });
});
