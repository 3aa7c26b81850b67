// The worker's remote-control answers (src/worker/pidbox.ts) as Celery 5.2's celery/worker/control.py gives them, over
// a fake control channel: rate_limit and time_limit through the worker's optional setters, terminate, heartbeat, and
// `hello` (mingle), whose `revoked` is Celery's LimitedSet data {id: [monotonic inserted time, id]}.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlChannel } from '../../src/broker/broker.ts';
import { decodeControlReply, encodeControlRequest } from '../../src/protocol/index.ts';
import { startPidbox, type PidboxWorker } from '../../src/worker/pidbox.ts';
import type { Running } from '../../src/worker/execute.ts';
import { REVOKE_EXPIRES_MS } from '../../src/stores/limits.ts';
import { quietLogger } from '../helpers/logs.ts';

class FakeChannel implements ControlChannel {
  readonly pythonPeers = false;
  handler: ((raw: string) => void) | null = null;
  replies: string[] = [];
  events: string[] = [];
  async listen(handler: (raw: string) => void) {
    this.handler = handler;
    return async () => {
      this.handler = null;
    };
  }
  async reply(_key: string, raw: string) {
    this.replies.push(raw);
  }
  async request(): Promise<string[]> {
    return [];
  }
  async event(routingKey: string) {
    this.events.push(routingKey);
  }

  /** Deliver a request and return this worker's answer. */
  async ask(method: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const ticket = `t-${this.replies.length}`;
    this.handler!(encodeControlRequest({ method, arguments: args, destination: null, pattern: null, matcher: null, ticket,
      reply_to: { exchange: 'reply.celery.pidbox', routing_key: 'oid' } }, 1));
    await new Promise((r) => setImmediate(r));
    const { ticket: got, replies } = decodeControlReply(this.replies.at(-1)!);
    assert.equal(got, ticket);
    return replies['w@test'];
  }
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function fakeWorker(extra: Partial<PidboxWorker> = {}) {
  const revokes: Array<{ ids: string[]; terminate: boolean; durable: boolean }> = [];
  const w: PidboxWorker & { revokes: typeof revokes } = {
    hostname: 'w@test', concurrency: 1, prefetch: 4, startedAt: Date.now(), processed: new Map(),
    registered: () => ['t.add'], active: () => [{ msg: { id: 'running-1' } } as unknown as Running],
    reservedRequests: () => [], scheduled: () => [], revokedIds: () => ['known-1'],
    revoke: async (ids, terminate, durable) => {
      revokes.push({ ids, terminate, durable });
    },
    shutdown: () => {},
    revokes,
    ...extra,
  };
  return w;
}

async function start(w: PidboxWorker) {
  const ch = new FakeChannel();
  stops.push(await startPidbox(w, ch, quietLogger()));
  return ch;
}

const monotonic = () => Number(process.hrtime.bigint() / 1000n) / 1e6;

test('rate_limit: Celery\'s arguments and replies, through setRateLimit when the worker has it', async () => {
  assert.deepEqual(await (await start(fakeWorker())).ask('rate_limit', { task_name: 't.add', rate_limit: '10/s' }),
    { error: 'rate limits are not supported by this worker' });
  const calls: Array<[string, string | null]> = [];
  const ch = await start(fakeWorker({
    setRateLimit: (name, rate) => {
      calls.push([name, rate]);
      if (rate === 'fast') throw new Error('not a rate: fast');
      return name === 't.add';
    },
  }));
  assert.deepEqual(await ch.ask('rate_limit', { task_name: 't.add', rate_limit: '10/s' }), { ok: 'new rate limit set successfully' });
  assert.deepEqual(await ch.ask('rate_limit', { task_name: 't.add', rate_limit: 5 }), { ok: 'new rate limit set successfully' });
  assert.deepEqual(await ch.ask('rate_limit', { task_name: 't.add', rate_limit: null }), { ok: 'rate limit disabled successfully' });
  assert.deepEqual(await ch.ask('rate_limit', { task_name: 't.nope', rate_limit: '1/m' }), { error: 'unknown task' });
  assert.deepEqual(await ch.ask('rate_limit', { task_name: 't.add', rate_limit: 'fast' }),
    { error: 'Invalid rate limit string: not a rate: fast' });
  assert.deepEqual(calls, [['t.add', '10/s'], ['t.add', '5'], ['t.add', null], ['t.nope', '1/m'], ['t.add', 'fast']]);
});

test('time_limit: soft and hard seconds (or null) through setTimeLimit', async () => {
  assert.deepEqual(await (await start(fakeWorker())).ask('time_limit', { task_name: 't.add', soft: 1, hard: 2 }),
    { error: 'time limits are not supported by this worker' });
  const calls: unknown[] = [];
  const ch = await start(fakeWorker({
    setTimeLimit: (name, soft, hard) => {
      calls.push([name, soft, hard]);
      return name === 't.add';
    },
  }));
  assert.deepEqual(await ch.ask('time_limit', { task_name: 't.add', soft: 1.5, hard: 3 }), { ok: 'time limits set successfully' });
  assert.deepEqual(await ch.ask('time_limit', { task_name: 't.add', soft: 2 }), { ok: 'time limits set successfully' });
  assert.deepEqual(await ch.ask('time_limit', { task_name: 't.nope', soft: 1, hard: 2 }), { error: 'unknown task' });
  assert.deepEqual(calls, [['t.add', 1.5, 3], ['t.add', 2, null], ['t.nope', 1, 2]]);
});

test('terminate and revoke --terminate name the running tasks they stop; heartbeat sends one at once', async () => {
  const w = fakeWorker();
  const ch = await start(w);
  assert.deepEqual(await ch.ask('terminate', { signal: 'SIGKILL', task_id: ['running-1', 'other'] }), { ok: 'terminate: running-1' });
  assert.deepEqual(await ch.ask('revoke', { task_id: 'other', terminate: true }), { ok: 'terminate: tasks unknown' });
  assert.deepEqual(await ch.ask('revoke', { task_id: ['a', 'b'] }), { ok: 'tasks a, b flagged as revoked' });
  assert.deepEqual(w.revokes, [
    { ids: ['running-1', 'other'], terminate: true, durable: true },
    { ids: ['other'], terminate: true, durable: true },
    { ids: ['a', 'b'], terminate: false, durable: true },
  ]);
  const before = ch.events.filter((e) => e === 'worker.heartbeat').length;
  assert.equal(await ch.ask('heartbeat'), null);
  await new Promise((r) => setImmediate(r));
  assert.equal(ch.events.filter((e) => e === 'worker.heartbeat').length, before + 1);
  assert.deepEqual(await ch.ask('clock'), { clock: 1 });
});

test('hello: the revoked ids as LimitedSet data, timed by their remaining life; the sender\'s live ids are taken', async () => {
  const now = Date.now();
  const w = fakeWorker({
    revokedUntil: () => new Map([['fresh', now + REVOKE_EXPIRES_MS], ['half', now + REVOKE_EXPIRES_MS / 2], ['gone', now - 1]]),
  });
  const ch = await start(w);
  const mono = monotonic();
  const reply = await ch.ask('hello', {
    from_node: 'py@test',
    revoked: { 'py-live': [mono - 10, 'py-live'], 'py-old': [mono - REVOKE_EXPIRES_MS / 1000 - 1, 'py-old'], 'py-bare': mono },
  }) as { revoked: Record<string, [number, string]>; clock: number };
  assert.deepEqual(Object.keys(reply.revoked).sort(), ['fresh', 'half']);
  const [fresh, id] = reply.revoked.fresh;
  assert.equal(id, 'fresh');
  assert.ok(Math.abs(fresh - mono) < 1, `inserted "now" for a revoke with its whole life left (${fresh} vs ${mono})`);
  assert.ok(Math.abs(reply.revoked.half[0] - (mono - REVOKE_EXPIRES_MS / 2000)) < 1, 'inserted half a life ago');
  for (const [t] of Object.values(reply.revoked)) assert.ok(!Number.isInteger(t), 'a float, as Python\'s LimitedSet needs');
  assert.ok(reply.clock >= 1);
  assert.deepEqual(w.revokes, [{ ids: ['py-live', 'py-bare'], terminate: false, durable: true }]);
  assert.equal(await ch.ask('hello', { from_node: 'w@test', revoked: {} }), null, 'no answer to itself');
});

test('hello without revokedUntil: each known id gets a whole REVOKE_EXPIRES from now', async () => {
  const ch = await start(fakeWorker());
  const mono = monotonic();
  const reply = await ch.ask('hello', { from_node: 'py@test', revoked: {} }) as { revoked: Record<string, [number, string]> };
  assert.deepEqual(Object.keys(reply.revoked), ['known-1']);
  assert.ok(Math.abs(reply.revoked['known-1'][0] - mono) < 1);
});
