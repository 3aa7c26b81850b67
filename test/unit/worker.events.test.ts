// Task events (src/worker/events.ts, `worker -E`) on memory:// with a fake control channel attached to the broker:
// with events off (the default, as Celery) a worker publishes only its worker-* events; with them on, one
// `task.multi` list per event-loop turn, Celery's fields, an increasing clock; task-sent from a producer with
// taskSendSentEvent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Celeriac, TaskContext } from 'celeriac';
import type { ControlChannel } from '../../src/broker/broker.ts';
import { decodeBody, parseEnvelope } from '../../src/protocol/envelope.ts';
import { memoryWorkers } from '../helpers/memory-workers.ts';

const { makeApp, startWorker } = memoryWorkers('we');

class FakeChannel implements ControlChannel {
  readonly pythonPeers = false;
  events: Array<{ routingKey: string; body: any }> = [];
  async listen() {
    return async () => {};
  }
  async reply() {}
  async request(): Promise<string[]> {
    return [];
  }
  async event(routingKey: string, raw: string) {
    this.events.push({ routingKey, body: decodeBody(parseEnvelope(raw)) });
  }
  /** Every task event, in order, flattened out of the task.multi lists. */
  taskEvents(): any[] {
    return this.events.filter((e) => e.routingKey.startsWith('task.')).flatMap((e) => (Array.isArray(e.body) ? e.body : [e.body]));
  }
}

async function withChannel(app: Celeriac): Promise<FakeChannel> {
  const ch = new FakeChannel();
  Object.defineProperty(await app.broker(), 'control', { value: ch, configurable: true });
  return ch;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('with task events off (the default) nothing but worker events is published', async () => {
  const app = makeApp();
  const ch = await withChannel(app);
  const add = app.task('e.add', (a: number, b: number) => a + b);
  const boom = app.task('e.boom', () => {
    throw new Error('boom');
  });
  const w = await startWorker(app);
  assert.equal(w.sendTaskEvents, false);
  assert.equal(await (await add.delay(1, 2)).get({ timeout: 5000 }), 3);
  await (await boom.delay()).get({ timeout: 5000 }).catch(() => {});
  await sleep(50);
  assert.deepEqual(ch.events.filter((e) => !e.routingKey.startsWith('worker.')), []);
  assert.ok(ch.events.some((e) => e.routingKey === 'worker.online'));
});

test('with sendTaskEvents: received, started, succeeded/failed/retried with Celery fields, batched, clock increasing', async () => {
  const app = makeApp();
  const ch = await withChannel(app);
  const add = app.task('e.add', (a: number, b: number) => a + b);
  const boom = app.task('e.boom', () => {
    throw new TypeError('bad value');
  });
  const flaky = app.task('e.flaky', function (this: TaskContext) {
    if (this.request.retries === 0) throw this.retry({ countdown: 0.05 });
    return { ok: true };
  });
  await startWorker(app, { sendTaskEvents: true, hostname: 'ev@test' });
  const r1 = await add.delay(2, 3);
  const r2 = await boom.delay();
  const r3 = await flaky.delay();
  await r1.get({ timeout: 5000 });
  await r2.get({ timeout: 5000 }).catch(() => {});
  await r3.get({ timeout: 5000 });
  await sleep(50);
  const evs = ch.taskEvents();
  assert.ok(ch.events.filter((e) => e.routingKey.startsWith('task.')).every((e) => e.routingKey === 'task.multi' && Array.isArray(e.body)));
  const of = (id: string) => evs.filter((e) => e.uuid === id).map((e) => e.type);
  assert.deepEqual(of(r1.id), ['task-received', 'task-started', 'task-succeeded']);
  assert.deepEqual(of(r2.id), ['task-received', 'task-started', 'task-failed']);
  assert.deepEqual(of(r3.id), ['task-received', 'task-started', 'task-retried', 'task-received', 'task-started', 'task-succeeded']);
  const received = evs.find((e) => e.uuid === r1.id && e.type === 'task-received');
  assert.equal(received.name, 'e.add');
  assert.equal(received.args, '(2, 3)');
  assert.equal(received.kwargs, '{}');
  assert.equal(received.retries, 0);
  assert.equal(received.root_id, r1.id);
  const ok = evs.find((e) => e.uuid === r1.id && e.type === 'task-succeeded');
  assert.equal(ok.result, '5');
  assert.equal(typeof ok.runtime, 'number');
  assert.equal(evs.find((e) => e.uuid === r3.id && e.type === 'task-succeeded').result, "{'ok': True}");
  const failed = evs.find((e) => e.uuid === r2.id && e.type === 'task-failed');
  assert.equal(failed.exception, "TypeError('bad value')");
  assert.match(failed.traceback, /bad value/);
  for (const e of evs) {
    assert.equal(e.hostname, 'ev@test');
    assert.equal(e.pid, process.pid);
    assert.equal(typeof e.timestamp, 'number');
    assert.equal(typeof e.utcoffset, 'number');
  }
  const clocks = evs.map((e) => e.clock);
  assert.deepEqual(clocks, [...clocks].sort((a, b) => a - b));
  assert.equal(new Set(clocks).size, clocks.length);
});

test('task-revoked carries terminated and expired; taskSendSentEvent publishes task-sent', async () => {
  const app = makeApp({ taskSendSentEvent: true });
  const ch = await withChannel(app);
  const add = app.task('e.add', (a: number, b: number) => a + b);
  await startWorker(app, { sendTaskEvents: true });
  const expired = await add.applyAsync([1, 1], {}, { expires: new Date(Date.now() - 1000) });
  await expired.get({ timeout: 5000 }).catch(() => {});
  await sleep(50);
  const revoked = ch.taskEvents().find((e) => e.uuid === expired.id && e.type === 'task-revoked');
  assert.equal(revoked?.expired, true);
  assert.equal(revoked?.terminated, false);
  const sent = ch.events.find((e) => e.routingKey === 'task.sent' && e.body.uuid === expired.id)?.body;
  assert.equal(sent?.type, 'task-sent');
  assert.equal(sent?.name, 'e.add');
  assert.equal(sent?.args, '(1, 1)');
  assert.equal(sent?.queue, 'celery');
});
