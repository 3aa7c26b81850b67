import { appendFileSync } from 'node:fs';
import type { TaskContext } from 'celeriac';
import { app } from './celery.ts';

export class PaymentError extends Error {
  override name = 'PaymentError';
}

/** Appends one line per run to $TEST_RUN_LOG, so tests can count executions across processes. */
function record(line: string): void {
  if (process.env.TEST_RUN_LOG) appendFileSync(process.env.TEST_RUN_LOG, line + '\n');
}

export const add = app.task('basic.add', async (a: number, b: number) => a + b);
export const mul = app.task('basic.mul', (a: number, b: number) => a * b);
export const xsum = app.task('basic.xsum', (numbers: number[]) => numbers.reduce((s, n) => s + n, 0));

export const fail = app.task('basic.fail', (message: string = 'boom', kind: string = 'value') => {
  if (kind === 'custom') throw new PaymentError(message);
  if (kind === 'type') throw new TypeError(message);
  const err = new Error(message);
  err.name = 'ValueError';
  throw err;
});

export const sleepy = app.task('basic.sleepy', async function (this: TaskContext, seconds: number, tag: string = '') {
  record(`start ${tag} ${this.request.id}`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  record(`done ${tag} ${this.request.id}`);
  return tag || seconds;
});

export const order = app.task('basic.order', (tag: string) => {
  record(tag);
  return tag;
});

export const flaky = app.task('basic.flaky', function (this: TaskContext, failTimes: number) {
  record(`flaky ${this.request.retries}`);
  if (this.request.retries < failTimes) {
    throw this.retry({ countdown: 0.2, exc: new Error(`attempt ${this.request.retries} failed`) });
  }
  return { retries: this.request.retries };
}, { maxRetries: 3 });

class Transient extends Error {}
export const autoretry = app.task('basic.autoretry', function (this: TaskContext, failTimes: number) {
  record(`auto ${this.request.retries}`);
  if (this.request.retries < failTimes) throw new Transient(`transient ${this.request.retries}`);
  return this.request.retries;
}, { autoretryFor: [Transient], retryBackoff: 0.1, retryBackoffMax: 0.4, maxRetries: 4 });

export const notJson = app.task('basic.not_json', () => new Map([[1, 2]]));

export const request = app.task('basic.request', function (this: TaskContext, ...args: unknown[]) {
  const r = this.request;
  return { id: r.id, retries: r.retries, args, priority: r.deliveryInfo.priority, queue: r.deliveryInfo.queue };
});

/** Blocks the event loop (no await) for `seconds`, so its worker cannot renew its leases meanwhile. */
export const block = app.task('basic.block', function (this: TaskContext, seconds: number, thenFail = false) {
  record(`block ${this.request.id} ${this.request.deliveryInfo.redelivered}`);
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    // busy: a synchronous handler, as CPU-bound code is
  }
  if (thenFail) throw new Error('blocked, then failed');
  return seconds;
});

/** Rate-limited on the whole broker ($TEST_RATE, default 20/s): records when each run started. */
export const limited = app.task('basic.limited', function (this: TaskContext, n: number) {
  record(`limited ${Date.now()} ${process.pid} ${this.request.id}`);
  return n;
}, { rateLimit: process.env.TEST_RATE ?? '20/s' });
