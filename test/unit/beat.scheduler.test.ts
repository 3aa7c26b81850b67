// The Beat class on a fake clock that the tests drive, against the real in-memory BeatStore (src/broker/memory): leadership,
// once-only sends, takeover after a lease, no burst after downtime, catch-up, pruning, exact cadence, crontab in a zone
// and across daylight-saving changes, how long the loop sleeps, and validation at construction. Nothing here waits on
// the wall clock: time moves only when a test advances it, so every count and instant is exact.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Beat, Celeriac, CeleriacError, ErrorCode, NotJsonError, crontab, every, type BeatEntry, type BeatOptions, type BeatSend } from 'celeriac';
import type { BeatClock } from '../../src/beat/beat.ts';
import type { BeatStore, Broker, OutgoingMessage } from '../../src/broker/broker.ts';
import { memoryBeatStore } from '../../src/broker/memory/beat-store.ts';
import { MemoryStore, type BeatState } from '../../src/broker/memory/store.ts';
import { quietLogger } from '../helpers/logs.ts';

const APP = 'unit';
const T0 = Date.parse('2031-05-05T10:00:00Z'); // far from the real time: a beat that read Date.now would be noticed

/** Lets every promise and immediate that beat started run to its end (the memory store does no I/O). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A clock that stands still until advanced; timers run in time order, each at its own instant. */
class FakeClock implements BeatClock {
  private t: number;
  private seq = 0;
  private spins = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start: number) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** When the pending timers are due (ms since the epoch), earliest first. */
  pending(): number[] {
    return [...this.timers.values()].map((x) => x.at).sort((a, b) => a - b);
  }

  /** Runs the earliest timer due by `limit`, moving the time to it; false when there is none. */
  private async step(limit: number): Promise<boolean> {
    let next: [number, { at: number; fn: () => void }] | null = null;
    for (const e of this.timers) if (e[1].at <= limit && (next === null || e[1].at < next[1].at)) next = e;
    if (next === null) return false;
    this.timers.delete(next[0]);
    this.spins = next[1].at <= this.t ? this.spins + 1 : 0;
    if (this.spins > 1000) assert.fail(`more than 1000 timers ran at ${new Date(this.t).toISOString()} without time moving: a busy loop`);
    this.t = Math.max(this.t, next[1].at);
    next[1].fn();
    await settle();
    return true;
  }

  /** Moves the time forward by `ms`, running every timer that falls due on the way (those due now too). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    while (await this.step(end));
    this.t = end;
    await settle();
  }

  /** Runs timers until `done()` holds; returns the time that took. Fails after `maxMs`. */
  async until(done: () => boolean, maxMs: number): Promise<number> {
    const from = this.t;
    await settle();
    while (!done()) {
      if (!(await this.step(from + maxMs))) assert.fail(`not done within ${maxMs} ms`);
    }
    return this.t - from;
  }
}

/** The memory store reads Date.now (for its lock's lease); during each of its calls, lend it the fake clock. */
function onClock(store: BeatStore, clock: FakeClock): BeatStore {
  const wrapped = {} as Record<string, unknown>;
  for (const k of ['acquire', 'release', 'lastRuns', 'fire', 'prune'] as const) {
    wrapped[k] = (...a: unknown[]) => {
      const real = Date.now;
      Date.now = () => clock.now();
      try {
        return (store[k] as (...x: unknown[]) => Promise<unknown>).apply(store, a); // its bodies are synchronous
      } finally {
        Date.now = real;
      }
    };
  }
  return wrapped as unknown as BeatStore;
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

type Sent = BeatSend & { owner: string; at: number };

/** One shared memory beat store on one fake clock, and the beats that use it. */
function world(start = T0) {
  const clock = new FakeClock(start);
  const memory = new MemoryStore();
  const messages: OutgoingMessage[] = []; // what the store published, in order
  const store = onClock(memoryBeatStore(memory, APP, (m) => messages.push(m)), clock);
  const state: BeatState = memory.beatState(APP);
  const sent: Sent[] = []; // what the beats said they sent, with who sent it and when (on the fake clock)
  const runAts = () => sent.map((s) => s.runAt - start);
  function beat(schedule: Record<string, BeatEntry>, opts: BeatOptions & { via?: BeatStore; lines?: string[]; extra?: Partial<ConstructorParameters<typeof Celeriac>[1]> } = {}): Beat {
    const { via, lines, extra, ...options } = opts;
    const b = new Beat(makeApp(schedule, via ?? store, extra), { logger: quietLogger(lines), clock, ...options });
    b.on('sent', (s: BeatSend) => sent.push({ ...s, owner: b.owner, at: clock.now() }));
    beats.push(b);
    return b;
  }
  return { clock, store, state, messages, sent, runAts, beat };
}

function makeApp(schedule: Record<string, BeatEntry>, store: BeatStore, extra: ConstructorParameters<typeof Celeriac>[1] = {}): Celeriac {
  const app = new Celeriac(APP, { broker: 'memory://beat-unit', beatSchedule: schedule, ...extra });
  app.broker = async () => ({ beatStore: () => store }) as unknown as Broker;
  return app;
}

function body(m: OutgoingMessage): unknown[] {
  return JSON.parse(Buffer.from(JSON.parse(m.raw).body, 'base64').toString('utf8'));
}

const range = (n: number, step: number, first = step) => Array.from({ length: n }, (_, i) => first + i * step);

test('two beats on one store: one leader, each tick sent once, the lease renewed', async () => {
  const w = world();
  const schedule = { tick: { task: 'unit.tick', schedule: every(1) } };
  const linesA: string[] = [];
  const linesB: string[] = [];
  const a = w.beat(schedule, { lines: linesA });
  const b = w.beat(schedule, { lines: linesB });
  await a.start();
  await b.start();
  await w.clock.advance(30_000); // six leases of 5 s
  assert.deepEqual(w.runAts(), range(30, 1000), 'every tick of 30 s, once, on time');
  assert.equal(w.messages.length, 30, 'the store published each once');
  assert.ok(w.sent.every((s) => s.at === s.runAt), 'each sent at its due time');
  assert.ok(a.isLeader && !b.isLeader, 'the first to start leads throughout');
  assert.deepEqual(new Set(w.sent.map((s) => s.owner)), new Set([a.owner]), 'one sender');
  assert.equal(w.state.lock?.owner, a.owner);
  assert.ok(w.state.lock!.expiresAt > w.clock.now(), 'the leader renews its lease before it runs out');
  const leaderLines = linesA.join('\n');
  assert.match(leaderLines, /INFO\/MainProcess\] beat: Starting\.\.\./);
  assert.match(leaderLines, /beat: Acquired the leader lock/);
  assert.match(leaderLines, /Scheduler: Sending due task tick \(unit\.tick\)/);
  assert.match(linesB.join('\n'), /Another beat process holds the leader lock; standing by/);
  assert.doesNotMatch(linesB.join('\n'), /Sending due task/);
});

test('an interval entry that never ran is first sent one period after start (Celery), then on an exact cadence', async () => {
  const w = world();
  const beat = w.beat({ tick: { task: 'unit.tick', schedule: every(30) } });
  await beat.start();
  await w.clock.advance(29_999);
  assert.equal(w.sent.length, 0, 'not sent at start, nor before one period');
  await w.clock.advance(1);
  assert.deepEqual(w.runAts(), [30_000], 'one period after start');
  await w.clock.advance(90_000);
  assert.deepEqual(w.runAts(), range(4, 30_000), 'no drift');
  assert.ok(w.sent.every((s) => s.at === s.runAt));
});

test('a leader that stops renewing is replaced within its lease, and the cadence goes on', async () => {
  const w = world();
  const schedule = { tick: { task: 'unit.tick', schedule: every(1) } };
  const viaA = partitionable(w.store);
  const linesA: string[] = [];
  const a = w.beat(schedule, { via: viaA, lines: linesA });
  const b = w.beat(schedule);
  await a.start();
  await b.start();
  await w.clock.advance(4_500);
  assert.ok(a.isLeader && !b.isLeader);
  viaA.cut = true; // A is alive but cannot reach the store: its lease runs out
  const before = w.sent.length;
  const gap = await w.clock.until(() => w.sent.length > before, 10_000);
  assert.ok(gap <= 5000 + 500, `B sent ${gap} ms after A was cut off (lease 5 s, followers retry every 0.5 s)`);
  assert.ok(gap > 5000 - 5000 / 3, 'not before the lease that A last renewed ran out');
  assert.ok(b.isLeader);
  assert.equal(w.sent[before].owner, b.owner);
  assert.match(linesA.join('\n'), /beat: connection lost/);
  await w.clock.advance(3_000);
  viaA.cut = false; // A comes back: it finds B holding the lock and stands by
  await w.clock.advance(5_000);
  assert.ok(!a.isLeader && b.isLeader);
  assert.match(linesA.join('\n'), /Lost the leader lock/);
  assert.deepEqual(new Set(w.sent.slice(before).map((s) => s.owner)), new Set([b.owner]), 'A sends nothing after its lease');
  const runAts = w.runAts();
  assert.equal(new Set(runAts).size, runAts.length, 'no tick twice across the takeover');
  assert.deepEqual(runAts.slice(0, before), range(before, 1000));
  const takeover = runAts[before];
  assert.deepEqual(runAts.slice(before), range(runAts.length - before, 1000, takeover), 'then every second again from the takeover');
});

test('after downtime an entry is sent once, not once per missed tick, then keeps its cadence', async () => {
  const w = world();
  w.state.runs.set('tick', T0 - 20_000); // 20 ticks of 1 s missed
  const lines: string[] = [];
  const beat = w.beat({ tick: { task: 'unit.tick', schedule: every(1) } }, { lines });
  await beat.start();
  await w.clock.advance(0);
  assert.deepEqual(w.runAts(), [0], 'one send for all the missed ticks, recorded as now, so the cadence restarts from now');
  assert.equal(w.state.runs.get('tick'), T0);
  await w.clock.advance(3_000);
  assert.deepEqual(w.runAts(), [0, 1000, 2000, 3000]);
  assert.match(lines.join('\n'), /tick missed runs while no beat was sending; sending it once/);
});

test('catchUp: true sends every missed tick, oldest first, then the normal cadence', async () => {
  const w = world();
  w.state.runs.set('tick', T0 - 10_000);
  const lines: string[] = [];
  const beat = w.beat({ tick: { task: 'unit.tick', schedule: every(1), catchUp: true } }, { lines });
  await beat.start();
  await w.clock.advance(0);
  assert.deepEqual(w.runAts(), range(10, 1000, -9000), 'the ten missed ticks at once, each recorded as its own time');
  assert.ok(w.sent.every((s) => s.at === T0), 'all sent at start, without waiting');
  await w.clock.advance(2_000);
  assert.deepEqual(w.runAts().slice(10), [1000, 2000]);
  assert.doesNotMatch(lines.join('\n'), /missed runs/);
});

test('a new leader forgets the state of entries no longer scheduled; a changed schedule applies from the last run', async () => {
  const w = world();
  w.state.runs.set('gone', T0 - 5000);
  w.state.runs.set('slow', T0 - 200); // was every 0.1 s, now every hour: next due an hour after its last run
  const lines: string[] = [];
  const beat = w.beat({
    slow: { task: 'unit.slow', schedule: every({ hours: 1 }) },
    added: { task: 'unit.added', schedule: every(60) },
  }, { lines });
  await beat.start();
  await w.clock.advance(150_000);
  assert.equal(w.state.runs.has('gone'), false);
  assert.equal(w.state.runs.get('slow'), T0 - 200, 'rescheduled entry not sent');
  assert.deepEqual(w.sent.map((s) => [s.entry, s.runAt - T0]), [['added', 60_000], ['added', 120_000]]);
  assert.match(lines.join('\n'), /Forgot the state of entries no longer scheduled: gone/);
  await w.clock.advance(3_600_000 - 200 - 150_000);
  assert.deepEqual(w.sent.filter((s) => s.entry === 'slow').map((s) => s.runAt - T0), [3_600_000 - 200], 'an hour after its last run');
});

test('the message: task, args, kwargs and options (queue, priority, expires) as given; a normal Celery task message', async () => {
  const w = world();
  const beat = w.beat({
    sms: {
      task: 'celery_task.user_task.send_sms', schedule: every(1), args: ['18888888', '6666'], kwargs: { urgent: true },
      options: { queue: 'sms', priority: 6, expires: 30 },
    },
  });
  await beat.start();
  await w.clock.advance(1000);
  assert.equal(w.messages.length, 1);
  const m = w.messages[0];
  assert.equal(m.queue, 'sms');
  assert.equal(m.priority, 6);
  const env = JSON.parse(m.raw);
  assert.equal(env.headers.task, 'celery_task.user_task.send_sms');
  assert.equal(env.headers.eta, null);
  assert.ok(typeof env.headers.expires === 'string');
  assert.deepEqual(body(m).slice(0, 2), [['18888888', '6666'], { urgent: true }]);
  assert.equal(w.sent[0].id, env.headers.id);
  assert.equal(w.sent[0].entry, 'sms');
  assert.equal(w.sent[0].task, 'celery_task.user_task.send_sms');
  assert.equal(w.sent[0].runAt, T0 + 1000);
});

test('stop() releases the lock so a standby beat takes over before the lease would have run out', async () => {
  const w = world();
  const schedule = { tick: { task: 'unit.tick', schedule: every(1) } };
  const stopped: string[] = [];
  const a = w.beat(schedule, { lockTtlMs: 20_000 });
  const b = w.beat(schedule, { lockTtlMs: 20_000 });
  a.on('leader', (l: boolean) => stopped.push(`leader ${l}`)).on('stopped', () => stopped.push('stopped'));
  await a.start();
  await b.start();
  await w.clock.advance(2_500);
  assert.ok(a.isLeader && !b.isLeader);
  await a.stop();
  assert.equal(w.state.lock, null, 'released');
  assert.equal(a.state, 'stopped');
  assert.deepEqual(stopped, ['leader true', 'leader false', 'stopped']);
  const took = await w.clock.until(() => b.isLeader, 20_000);
  assert.ok(took <= 2000, `B leads ${took} ms after the stop: at its next try (every lockTtl/10), not after the 20 s lease`);
  await w.clock.advance(2_000);
  const runAts = w.runAts();
  assert.equal(new Set(runAts).size, runAts.length, 'no tick twice across the handover');
  assert.equal(w.sent.at(-1)!.owner, b.owner);
});

test('the loop sleeps until the next due time or lock renewal, never longer than tickMaxMs; nothing waits after stop', async () => {
  const w = world();
  const hourly = { h: { task: 'unit.h', schedule: every({ hours: 1 }) } };
  const capped = w.beat(hourly, { lockTtlMs: 30_000, tickMaxMs: 1000 });
  await capped.start();
  await w.clock.advance(0);
  assert.deepEqual(w.clock.pending(), [T0 + 1000], 'tickMaxMs caps the sleep');
  await capped.stop();
  assert.deepEqual(w.clock.pending(), [], 'stop() cancels the sleep');

  const renewing = w.beat(hourly, { lockTtlMs: 30_000, tickMaxMs: 60_000 });
  await renewing.start();
  await w.clock.advance(0);
  assert.deepEqual(w.clock.pending(), [T0 + 10_000], 'wakes to renew the lock at lockTtl/3');
  await renewing.stop();

  const due = w.beat({ s: { task: 'unit.s', schedule: every(7) } }, { lockTtlMs: 30_000, tickMaxMs: 60_000 });
  await due.start();
  await w.clock.advance(0);
  assert.deepEqual(w.clock.pending(), [T0 + 7000], 'wakes when the entry is due');
  await w.clock.advance(7000);
  assert.deepEqual(w.runAts(), [7000]);
  assert.deepEqual(w.clock.pending(), [T0 + 10_000], 'then for the renewal, before the next tick');
  await due.stop();

  const leader = w.beat(hourly, { lockTtlMs: 30_000, tickMaxMs: 60_000 });
  const follower = w.beat(hourly, { lockTtlMs: 30_000, tickMaxMs: 60_000 });
  await leader.start();
  await follower.start();
  await w.clock.advance(0);
  assert.ok(leader.isLeader && !follower.isLeader);
  const now = w.clock.now();
  assert.deepEqual(w.clock.pending(), [now + 3000, now + 10_000], 'a follower tries the lock every lockTtl/10, the leader renews at lockTtl/3');
});

test('crontab in the app time zone: 09:43 Asia/Shanghai is sent at 01:43 UTC each day', async () => {
  const start = Date.parse('2026-03-07T00:00:00Z'); // 08:00 in Shanghai
  const w = world(start);
  const beat = w.beat({ sms: { task: 'unit.sms', schedule: crontab({ hour: 9, minute: 43 }) } },
    { extra: { timezone: 'Asia/Shanghai' }, lockTtlMs: 3_600_000, tickMaxMs: 3_600_000 });
  assert.equal(beat.timezone, 'Asia/Shanghai');
  await beat.start();
  await w.clock.advance(3 * 86_400_000);
  assert.deepEqual(w.sent.map((s) => new Date(s.runAt).toISOString()),
    ['2026-03-07T01:43:00.000Z', '2026-03-08T01:43:00.000Z', '2026-03-09T01:43:00.000Z']);
  assert.ok(w.sent.every((s) => s.at === s.runAt), 'sent at the minute, not at the next hourly pass');
});

test('crontab across daylight saving in America/New_York: a time in the gap runs once after it, a repeated time once', async () => {
  const spring = world(Date.parse('2026-03-07T12:00:00Z'));
  const hours = { lockTtlMs: 3_600_000, tickMaxMs: 3_600_000, extra: { timezone: 'America/New_York' } };
  await spring.beat({ night: { task: 'unit.night', schedule: crontab({ hour: 2, minute: 30 }) } }, hours).start();
  await spring.clock.advance(3 * 86_400_000);
  assert.deepEqual(spring.sent.map((s) => new Date(s.runAt).toISOString()),
    ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z'], '02:30 does not exist on Mar 8: 03:00 EDT');

  const fall = world(Date.parse('2026-10-31T12:00:00Z'));
  await fall.beat({ night: { task: 'unit.night', schedule: crontab({ hour: 1, minute: 30 }) } }, hours).start();
  await fall.clock.advance(2 * 86_400_000);
  assert.deepEqual(fall.sent.map((s) => new Date(s.runAt).toISOString()),
    ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'], '01:30 happens twice on Nov 1: sent once (EDT)');
});

test('construction checks the schedule and the clock: bad entries and non-JSON args fail at once with a clear error', () => {
  const { store } = world();
  const mk = (schedule: Record<string, unknown>, options?: BeatOptions) => () =>
    new Beat(makeApp(schedule as Record<string, BeatEntry>, store), options);
  const bad = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) =>
    e instanceof CeleriacError && e.code === ErrorCode.BadOption && re.test(e.message));
  bad(mk({ x: { schedule: 5 } }), /beatSchedule\["x"\]: task must be/);
  bad(mk({ x: { task: 't' } }), /beatSchedule\["x"\]: schedule is missing/);
  bad(mk({ x: { task: 't', shedule: 5 } }), /unknown key "shedule" \(did you mean "schedule"\?\)/);
  bad(mk({ x: { task: 't', schedule: 'hourly' } }), /must be every\(...\), crontab\(...\) or a number/);
  bad(mk({ x: { task: 't', schedule: 5, options: { queu: 'a' } } }), /options: unknown key "queu" \(did you mean "queue"\?\)/);
  bad(mk({ x: { task: 't', schedule: 5, args: 'a' } }), /args must be an array/);
  assert.throws(mk({ x: { task: 't', schedule: 5, args: [new Map()] } }), NotJsonError);
  bad(mk({}, { clock: { now: () => 0 } as unknown as BeatClock }), /clock must be .*missing setTimeout, clearTimeout/);
  bad(mk({}, { clock: null as unknown as BeatClock }), /clock must be/);
  const ok = new Beat(makeApp({ a: { task: 't', schedule: 5 }, b: { task: 't', schedule: crontab({ hour: 9, minute: 43 }) } }, store));
  assert.deepEqual(ok.entries.map((e) => e.schedule.describe()), ['every 5 seconds', 'at 09:43 every day']);
});

test('start() runs once: a second start, or a start after stop, is a CeleriacError', async () => {
  const w = world();
  const beat = w.beat({});
  await beat.start();
  await assert.rejects(beat.start(), (e: unknown) => e instanceof CeleriacError && e.code === ErrorCode.BadOption && /beat already running/.test(e.message));
  await beat.stop();
  await assert.rejects(beat.start(), (e: unknown) => e instanceof CeleriacError && /beat already stopped/.test(e.message));
});

test('timezone: UTC by default, the machine zone when enableUtc is false, IANA names checked', () => {
  const { store } = world();
  assert.equal(makeApp({}, store).conf.timezone, 'UTC');
  assert.equal(makeApp({}, store, { enableUtc: false }).conf.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.equal(makeApp({}, store, { enableUtc: false, timezone: 'Asia/Shanghai' }).conf.timezone, 'Asia/Shanghai');
  assert.equal(makeApp({}, store, { timezone: 'Europe/Berlin' }).conf.timezone, 'Europe/Berlin');
  assert.throws(() => makeApp({}, store, { timezone: 'Asia/Shangai' }), (e: unknown) =>
    e instanceof CeleriacError && e.code === ErrorCode.BadOption &&
    /timezone "Asia\/Shangai" is not an IANA time zone name \(did you mean "Asia\/Shanghai"\?\)/.test(e.message));
  assert.throws(() => makeApp({}, store, { timezone: 'Nowhere' }), /is not an IANA time zone name/);
});
