// The Beat class against an in-memory BeatStore that keeps the same promises as the Redis one (lock with a lease,
// fire fenced by owner and last run): leadership, once-only sends, takeover, no burst after downtime, catch-up,
// pruning, exact cadence, and validation at construction. Sub-second intervals keep it fast.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Beat, Celeriac, CeleriacError, ErrorCode, NotJsonError, crontab, every, type BeatEntry, type BeatSend } from 'celeriac';
import type { BeatStore, Broker, OutgoingMessage } from '../../src/broker/broker.ts';
import { quietLogger } from '../helpers/logs.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class MemoryBeatStore implements BeatStore {
  lock: { owner: string; until: number } | null = null;
  readonly state = new Map<string, number>();
  readonly sent: Array<{ owner: string; entry: string; runAt: number; message: OutgoingMessage }> = [];

  async acquire(owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.lock && this.lock.until > now && this.lock.owner !== owner) return false;
    this.lock = { owner, until: now + ttlMs };
    return true;
  }

  async release(owner: string): Promise<void> {
    if (this.lock?.owner === owner) this.lock = null;
  }

  async lastRuns(): Promise<Map<string, number>> {
    return new Map(this.state);
  }

  async fire(owner: string, entry: string, expected: number | null, runAt: number, message: OutgoingMessage): Promise<boolean> {
    if (!this.lock || this.lock.owner !== owner || this.lock.until <= Date.now()) return false;
    if ((this.state.get(entry) ?? null) !== expected) return false;
    this.state.set(entry, runAt);
    this.sent.push({ owner, entry, runAt, message });
    return true;
  }

  async prune(keep: string[]): Promise<void> {
    for (const k of [...this.state.keys()]) if (!keep.includes(k)) this.state.delete(k);
  }
}

/** A store whose calls all fail, as when a beat's process hangs or is cut off (it can no longer renew). */
function partitionable(store: BeatStore): BeatStore & { cut: boolean } {
  const wrapped = { cut: false } as BeatStore & { cut: boolean };
  for (const k of ['acquire', 'release', 'lastRuns', 'fire', 'prune'] as const) {
    (wrapped as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      if (wrapped.cut) return Promise.reject(new Error('connection lost'));
      return (store[k] as (...x: unknown[]) => Promise<unknown>).apply(store, a);
    };
  }
  return wrapped;
}

const beats: Beat[] = [];
afterEach(async () => {
  for (const b of beats.splice(0)) await b.stop();
});

function makeApp(schedule: Record<string, BeatEntry>, store: BeatStore, extra: ConstructorParameters<typeof Celeriac>[1] = {}): Celeriac {
  const app = new Celeriac('unit', { broker: 'redis://127.0.0.1:1/0', beatSchedule: schedule, ...extra });
  app.broker = async () => ({ beatStore: () => store }) as unknown as Broker;
  return app;
}

function makeBeat(app: Celeriac, lines: string[] = [], lockTtlMs = 300): Beat {
  const beat = new Beat(app, { logger: quietLogger(lines), lockTtlMs, tickMaxMs: 50 });
  beats.push(beat);
  return beat;
}

function body(m: OutgoingMessage): unknown[] {
  return JSON.parse(Buffer.from(JSON.parse(m.raw).body, 'base64').toString('utf8'));
}

test('two beats on one store: one leader, each tick sent once', async () => {
  const store = new MemoryBeatStore();
  const schedule = { tick: { task: 'unit.tick', schedule: every(0.1) } };
  const linesA: string[] = [];
  const linesB: string[] = [];
  const a = makeBeat(makeApp(schedule, store), linesA);
  const b = makeBeat(makeApp(schedule, store), linesB);
  await a.start();
  await b.start();
  await sleep(1050);
  assert.ok(store.sent.length >= 8 && store.sent.length <= 11, `sent ${store.sent.length} in ~1 s at 0.1 s`);
  assert.equal(new Set(store.sent.map((s) => s.owner)).size, 1, 'one sender');
  assert.equal([a, b].filter((x) => x.isLeader).length, 1);
  const runAts = store.sent.map((s) => s.runAt);
  assert.equal(new Set(runAts).size, runAts.length, 'no tick twice');
  const leaderLines = (a.isLeader ? linesA : linesB).join('\n');
  assert.match(leaderLines, /INFO\/MainProcess\] beat: Starting\.\.\./);
  assert.match(leaderLines, /beat: Acquired the leader lock/);
  assert.match(leaderLines, /Scheduler: Sending due task tick \(unit\.tick\)/);
  assert.match((a.isLeader ? linesB : linesA).join('\n'), /standing by/);
});

test('an interval entry that never ran is first sent one period after start (Celery), then on an exact cadence', async () => {
  const store = new MemoryBeatStore();
  const beat = makeBeat(makeApp({ tick: { task: 'unit.tick', schedule: every(0.3) } }, store));
  const started = Date.now();
  await beat.start();
  await sleep(150);
  assert.equal(store.sent.length, 0, 'not sent at start');
  await sleep(850);
  assert.ok(store.sent.length >= 2, `sent ${store.sent.length}`);
  assert.ok(store.sent[0].runAt - started >= 290 && store.sent[0].runAt - started < 400);
  for (let i = 1; i < store.sent.length; i++) assert.equal(store.sent[i].runAt - store.sent[i - 1].runAt, 300, 'no drift');
});

test('a leader that stops renewing is replaced within its lease, and the cadence goes on', async () => {
  const store = new MemoryBeatStore();
  const schedule = { tick: { task: 'unit.tick', schedule: every(0.1) } };
  const storeA = partitionable(store);
  const a = makeBeat(makeApp(schedule, storeA), [], 300);
  await a.start();
  await sleep(50);
  const b = makeBeat(makeApp(schedule, store), [], 300);
  await b.start();
  await sleep(400);
  assert.ok(a.isLeader && !b.isLeader);
  storeA.cut = true; // A is alive but cannot reach the store: its lease runs out
  const cutAt = Date.now();
  const before = store.sent.length;
  while (store.sent.length === before || store.sent[store.sent.length - 1].owner === a.owner) {
    assert.ok(Date.now() - cutAt < 2000, 'B took over within 2 s');
    await sleep(10);
  }
  const gap = Date.now() - cutAt;
  assert.ok(gap <= 300 + 100 + 150, `takeover after ${gap} ms (lease 300 ms)`);
  assert.ok(b.isLeader);
  const runAts = store.sent.map((s) => s.runAt);
  assert.equal(new Set(runAts).size, runAts.length, 'no tick twice across the takeover');
  storeA.cut = false;
});

test('after downtime an entry is sent once, not once per missed tick, then keeps its cadence', async () => {
  const store = new MemoryBeatStore();
  store.state.set('tick', Date.now() - 2000); // 20 ticks of 0.1 s missed
  const lines: string[] = [];
  const beat = makeBeat(makeApp({ tick: { task: 'unit.tick', schedule: every(0.1) } }, store), lines);
  const started = Date.now();
  await beat.start();
  await sleep(60);
  assert.equal(store.sent.length, 1, 'one send for all the missed ticks');
  assert.ok(store.sent[0].runAt >= started, 'recorded as now, so the cadence restarts from now');
  await sleep(240);
  assert.ok(store.sent.length >= 2 && store.sent.length <= 4, `sent ${store.sent.length}`);
  assert.equal(store.sent[1].runAt - store.sent[0].runAt, 100);
  assert.match(lines.join('\n'), /tick missed runs while no beat was sending; sending it once/);
});

test('catchUp: true sends every missed tick, oldest first, then the normal cadence', async () => {
  const store = new MemoryBeatStore();
  const last = Date.now() - 1000;
  store.state.set('tick', last);
  const beat = makeBeat(makeApp({ tick: { task: 'unit.tick', schedule: every(0.1), catchUp: true } }, store));
  await beat.start();
  await sleep(80);
  assert.ok(store.sent.length >= 9, `caught up ${store.sent.length} ticks at once`);
  assert.deepEqual(store.sent.slice(0, 9).map((s) => s.runAt - last), [100, 200, 300, 400, 500, 600, 700, 800, 900]);
});

test('a new leader forgets the state of entries no longer scheduled; a changed schedule applies from the last run', async () => {
  const store = new MemoryBeatStore();
  const now = Date.now();
  store.state.set('gone', now - 5000);
  store.state.set('slow', now - 200); // was every 0.1 s, now every hour: not due again for an hour
  const lines: string[] = [];
  const beat = makeBeat(makeApp({
    slow: { task: 'unit.slow', schedule: every({ hours: 1 }) },
    added: { task: 'unit.added', schedule: every(0.1) },
  }, store), lines);
  await beat.start();
  await sleep(250);
  assert.equal(store.state.has('gone'), false);
  assert.equal(store.state.get('slow'), now - 200, 'rescheduled entry not sent');
  assert.ok(store.sent.length >= 1 && store.sent.every((s) => s.entry === 'added'));
  assert.match(lines.join('\n'), /Forgot the state of entries no longer scheduled: gone/);
});

test('the message: task, args, kwargs and options (queue, priority, expires) as given; a normal Celery task message', async () => {
  const store = new MemoryBeatStore();
  const sent: BeatSend[] = [];
  const beat = makeBeat(makeApp({
    sms: {
      task: 'celery_task.user_task.send_sms', schedule: every(0.1), args: ['18888888', '6666'], kwargs: { urgent: true },
      options: { queue: 'sms', priority: 6, expires: 30 },
    },
  }, store));
  beat.on('sent', (s: BeatSend) => sent.push(s));
  await beat.start();
  await sleep(180);
  assert.ok(store.sent.length >= 1);
  const m = store.sent[0].message;
  assert.equal(m.queue, 'sms');
  assert.equal(m.priority, 6);
  const env = JSON.parse(m.raw);
  assert.equal(env.headers.task, 'celery_task.user_task.send_sms');
  assert.equal(env.headers.eta, null);
  assert.ok(typeof env.headers.expires === 'string');
  assert.deepEqual(body(m).slice(0, 2), [['18888888', '6666'], { urgent: true }]);
  assert.equal(sent[0].id, env.headers.id);
  assert.equal(sent[0].entry, 'sms');
});

test('stop() releases the lock so a standby beat takes over before the lease would have run out', async () => {
  const store = new MemoryBeatStore();
  const schedule = { tick: { task: 'unit.tick', schedule: every(0.1) } };
  const a = makeBeat(makeApp(schedule, store), [], 2000);
  await a.start();
  await sleep(30);
  const b = makeBeat(makeApp(schedule, store), [], 2000);
  await b.start();
  await sleep(30);
  assert.ok(a.isLeader && !b.isLeader);
  await a.stop();
  assert.equal(store.lock, null, 'released');
  const stoppedAt = Date.now();
  while (!b.isLeader) {
    assert.ok(Date.now() - stoppedAt < 1000, 'B leads well within the 2 s lease');
    await sleep(10);
  }
});

test('construction checks the schedule: bad entries and non-JSON args fail at once with a clear error', () => {
  const store = new MemoryBeatStore();
  const mk = (schedule: Record<string, unknown>) => () => new Beat(makeApp(schedule as Record<string, BeatEntry>, store));
  const bad = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) =>
    e instanceof CeleriacError && e.code === ErrorCode.BadOption && re.test(e.message));
  bad(mk({ x: { schedule: 5 } }), /beatSchedule\["x"\]: task must be/);
  bad(mk({ x: { task: 't' } }), /beatSchedule\["x"\]: schedule is missing/);
  bad(mk({ x: { task: 't', shedule: 5 } }), /unknown key "shedule" \(did you mean "schedule"\?\)/);
  bad(mk({ x: { task: 't', schedule: 'hourly' } }), /must be every\(...\), crontab\(...\) or a number/);
  bad(mk({ x: { task: 't', schedule: 5, options: { queu: 'a' } } }), /options: unknown key "queu" \(did you mean "queue"\?\)/);
  bad(mk({ x: { task: 't', schedule: 5, args: 'a' } }), /args must be an array/);
  assert.throws(mk({ x: { task: 't', schedule: 5, args: [new Map()] } }), NotJsonError);
  const ok = new Beat(makeApp({ a: { task: 't', schedule: 5 }, b: { task: 't', schedule: crontab({ hour: 9, minute: 43 }) } }, store));
  assert.deepEqual(ok.entries.map((e) => e.schedule.describe()), ['every 5 seconds', 'at 09:43 every day']);
});

test('timezone: UTC by default, the machine zone when enableUtc is false, IANA names checked', () => {
  const store = new MemoryBeatStore();
  assert.equal(makeApp({}, store).conf.timezone, 'UTC');
  assert.equal(makeApp({}, store, { enableUtc: false }).conf.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.equal(makeApp({}, store, { enableUtc: false, timezone: 'Asia/Shanghai' }).conf.timezone, 'Asia/Shanghai');
  assert.equal(makeApp({}, store, { timezone: 'Europe/Berlin' }).conf.timezone, 'Europe/Berlin');
  assert.throws(() => makeApp({}, store, { timezone: 'Asia/Shangai' }), (e: unknown) =>
    e instanceof CeleriacError && e.code === ErrorCode.BadOption &&
    /timezone "Asia\/Shangai" is not an IANA time zone name \(did you mean "Asia\/Shanghai"\?\)/.test(e.message));
  assert.throws(() => makeApp({}, store, { timezone: 'Nowhere' }), /is not an IANA time zone name/);
});
