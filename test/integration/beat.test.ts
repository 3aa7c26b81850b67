// Real beat processes (the CLI) on a real Redis: two beats send each tick once; kill -9 the leader and the other
// carries on within the lease; a restart after downtime sends once (or every missed tick with catchUp); schedule
// changes apply on restart; `beat --list`; the example config of docs/beat.md; `worker -B` runs the scheduled task.
import { closeAll } from '../helpers/lifecycle.ts';
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, exec, type Proc } from '../helpers/processes.ts';
import { sleep, until } from '../helpers/python.ts';
import { beatKeys } from '../../src/broker/redis/keys.ts';

const LEASE_MS = 5000; // Beat's default lockTtlMs
const KEYS = beatKeys('beattest');

let redis: RedisServer;
const procs: Proc[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  await closeAll(procs);
  await redis.flush();
});

type Schedule = Record<string, Record<string, unknown>>;

function env(schedule: Schedule, extra: Record<string, string> = {}): Record<string, string> {
  return { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1), BEAT_SCHEDULE: JSON.stringify(schedule), ...extra };
}

function spawnBeat(schedule: Schedule, extra: Record<string, string> = {}): Proc {
  const p = celeriac(['-A', 'test/apps/beat', 'beat', '-l', 'info'], env(schedule, extra));
  procs.push(p);
  return p;
}

async function beat(schedule: Schedule, extra: Record<string, string> = {}): Promise<Proc> {
  const p = spawnBeat(schedule, extra);
  await p.waitFor(/Acquired the leader lock|standing by/);
  return p;
}

async function stop(p: Proc): Promise<void> {
  p.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.out);
}

const sends = (p: Proc) => (p.out.match(/Scheduler: Sending due task/g) ?? []).length;
const isLeader = (p: Proc) => /Acquired the leader lock/.test(p.out) && !/Lost the leader lock/.test(p.out);

/** Times (ms) at which the list's length grew, one per new message, sampled every 20 ms until `untilMs`. */
async function sample(queue: string, forMs: number, stopWhen?: (times: number[]) => boolean): Promise<number[]> {
  const c = redis.client(0);
  const times: number[] = [];
  let seen = await c.llen(queue);
  const end = Date.now() + forMs;
  while (Date.now() < end && !stopWhen?.(times)) {
    const n = await c.llen(queue);
    for (; seen < n; seen++) times.push(Date.now());
    await sleep(20);
  }
  return times;
}

test('two beats send a 1 s entry ~10 times in 10 s, not 20; kill -9 the leader and the other goes on within the lease', async () => {
  const schedule = { tick: { every: 1, args: [2, 3] } };
  const a = await beat(schedule);
  const b = await beat(schedule);
  const c0 = redis.client(0);
  const start = await c0.llen('celery');
  await sleep(10_000);
  const sent = (await c0.llen('celery')) - start;
  assert.ok(sent >= 8 && sent <= 12, `sent ${sent} in 10 s with two beats`);
  const leader = isLeader(a) ? a : b;
  const follower = leader === a ? b : a;
  assert.ok(isLeader(leader) && !isLeader(follower), 'exactly one leader');
  assert.equal(sends(follower), 0, 'the follower sent nothing');
  assert.equal(sends(leader), await c0.llen('celery'), 'every message in the queue was logged once by the leader');
  assert.match(follower.out, /standing by/);

  await sample('celery', 3000, (t) => t.length > 0); // kill right after a send
  const lastSend = Date.now();
  leader.kill('SIGKILL');
  await leader.exited;
  const next = await sample('celery', LEASE_MS + 5000, (t) => t.length >= 3);
  assert.ok(next.length >= 3, `the follower took over and keeps sending (saw ${next.length})`);
  const gap = next[0] - lastSend;
  assert.ok(gap <= LEASE_MS + 2000, `gap of ${gap} ms after kill -9 (lease ${LEASE_MS} ms)`);
  assert.match(follower.out, /Acquired the leader lock/);
  const cadence = next[2] - next[1];
  assert.ok(cadence > 700 && cadence < 1300, `then every second (${cadence} ms)`);
});

test('restart both after downtime: one send for the missed ticks, not a burst; catchUp: true sends them all', async () => {
  const schedule = {
    tick: { every: 1 },
    backlog: { every: 1, catchUp: true, options: { queue: 'backlog' } },
  };
  const first = await beat(schedule);
  const c0 = redis.client(0);
  await until(async () => (await c0.llen('celery')) >= 2, 'two ticks before the restart', 10_000);
  await stop(first);
  assert.equal(await c0.get(KEYS.lock), null, 'the lock was released on SIGTERM');
  const stoppedAt = Date.now();
  await sleep(4000); // 4+ ticks missed
  const ticks = await c0.llen('celery');
  const backlog = await c0.llen('backlog');
  const a = spawnBeat(schedule);
  const b = spawnBeat(schedule);
  const firstAfter = await sample('celery', 15_000, (t) => t.length > 0);
  assert.equal(firstAfter.length, 1, `a tick after the restart:\n${a.out}\n${b.out}`);
  const missed = Math.floor((firstAfter[0] - stoppedAt) / 1000);
  await sleep(400);
  assert.equal((await c0.llen('celery')) - ticks, 1, 'one send for all the missed ticks of `tick`');
  const caught = (await c0.llen('backlog')) - backlog;
  assert.ok(caught >= missed - 1 && caught >= 4, `catchUp sent ${caught} of ~${missed} missed ticks at once`);
  await sleep(2100);
  const after = (await c0.llen('celery')) - ticks;
  assert.ok(after >= 2 && after <= 4, `then once a second again (${after} sends)`);
  assert.equal(sends(a) + sends(b), (await c0.llen('celery')) - ticks + (await c0.llen('backlog')) - backlog,
    'every send logged once, by one of the two');
  assert.match(a.out + b.out, /tick missed runs while no beat was sending; sending it once/);
});

test('a changed schedule applies on restart: entries added, removed (state forgotten) and rescheduled', async () => {
  const c0 = redis.client(0);
  const first = await beat({ keep: { every: 1, options: { queue: 'q-keep' } }, gone: { seconds: 1, options: { queue: 'q-gone' } } });
  await until(async () => (await c0.hlen(KEYS.state)) === 2, 'both entries ran', 10_000);
  await stop(first);
  const keepLast = await c0.hget(KEYS.state, 'keep');
  const second = await beat({ keep: { every: 3600, options: { queue: 'q-keep' } }, added: { every: 1, options: { queue: 'q-added' } } });
  const keepSent = await c0.llen('q-keep');
  const goneSent = await c0.llen('q-gone');
  await until(async () => (await c0.llen('q-added')) >= 2, 'the new entry runs', 10_000);
  assert.deepEqual((await c0.hkeys(KEYS.state)).sort(), ['added', 'keep'], 'the removed entry\'s state is gone');
  assert.match(second.out, /Forgot the state of entries no longer scheduled: gone/);
  assert.equal(await c0.llen('q-keep'), keepSent, 'keep is now hourly: not sent again');
  assert.equal(await c0.hget(KEYS.state, 'keep'), keepLast, 'and its last run is kept');
  assert.equal(await c0.llen('q-gone'), goneSent);
});

/** `2026-03-08 01:59:00 -05:00` computed with Intl, independently of the code under test. */
function wallClock(ms: number, tz: string): string {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: '2-digit', timeZoneName: 'longOffset',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName.slice(3);
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${offset}`;
}

test('beat --list: entries, schedules in words, last and next run in the configured zone, forgotten entries', async () => {
  const c0 = redis.client(0);
  const last = Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000;
  await c0.hset(KEYS.state, 'hourly', String(last), 'old', String(last));
  const schedule = {
    hourly: { every: 3600, options: { queue: 'reports' } },
    weekdays: { crontab: { minute: 0, hour: 8, dayOfWeek: 'mon-fri' } },
  };
  const { code, out } = await exec(celeriac(['-A', 'test/apps/beat', 'beat', '--list'],
    env(schedule, { BEAT_TIMEZONE: 'America/New_York' })));
  assert.equal(code, 0, out);
  assert.match(out, /^Timezone: America\/New_York$/m);
  assert.match(out, /ENTRY\s+TASK\s+SCHEDULE\s+LAST RUN\s+NEXT RUN/);
  const hourly = out.split('\n').find((l) => l.startsWith('hourly')) ?? '';
  assert.match(hourly, /beat\.tick\s+every hour\s+/);
  assert.ok(hourly.includes(wallClock(last, 'America/New_York')), `last run in New York time: ${hourly}`);
  assert.ok(hourly.endsWith(wallClock(last + 3_600_000, 'America/New_York')), `next run = last + 1 h: ${hourly}`);
  const weekdays = out.split('\n').find((l) => l.startsWith('weekdays')) ?? '';
  assert.match(weekdays, /at 08:00 on Monday-Friday\s+never\s+\d{4}-\d\d-\d\d 08:00:00 -0[45]:00$/);
  assert.match(out, /no longer scheduled.*: old/);
});

test('the docs/beat.md example: update_banner every minute, send_sms at 09:43 Asia/Shanghai, enableUtc false', async () => {
  const before = Date.now();
  const { code, out } = await exec(celeriac(['-A', 'test/apps/beat/schedule-example.ts', 'beat', '--list'],
    { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) }));
  assert.equal(code, 0, out);
  assert.match(out, /^Timezone: Asia\/Shanghai$/m);
  assert.match(out, /update_banner\s+celery_task\.home_task\.update_banner\s+every minute\s+never\s+\S+ \S+ \+08:00/);
  // the next 09:43 in Shanghai (UTC+8, no daylight saving): 01:43 UTC today, or tomorrow if that has passed
  const next = new Date(before);
  next.setUTCHours(1, 43, 0, 0);
  if (next.getTime() <= before) next.setUTCDate(next.getUTCDate() + 1);
  const expected = `${wallClock(next.getTime(), 'Asia/Shanghai')}`;
  assert.match(expected, / 09:43:00 \+08:00$/);
  assert.match(out, new RegExp(`send_sms\\s+celery_task\\.user_task\\.send_sms\\s+at 09:43 every day\\s+never\\s+${expected.replace(/\+/g, '\\+')}`));
});

test('worker -B: beat and worker in one process; the scheduled task runs and its result is stored', async () => {
  const p = celeriac(['-A', 'test/apps/beat', 'worker', '-B', '-l', 'info', '-c', '2'], env({ tick: { every: 1, args: [5, 6] } }));
  procs.push(p);
  await p.waitFor(' ready.');
  await p.waitFor(/Scheduler: Sending due task tick \(beat\.tick\)/, 10_000);
  await p.waitFor(/Task beat\.tick\[[^\]]+\] succeeded/, 10_000);
  const id = /Task beat\.tick\[([^\]]+)\] succeeded/.exec(p.out)![1];
  const client = new Celeriac('client', { broker: redis.url(0), backend: redis.url(1) });
  try {
    const r = client.AsyncResult(id);
    assert.equal(await r.state(), 'SUCCESS');
    assert.deepEqual(await r.get({ timeout: 5000 }), { ticked: [5, 6] });
  } finally {
    await client.close();
  }
  const c0 = redis.client(0);
  assert.ok(await c0.get(KEYS.lock), 'beat holds the lock while the worker runs');
  await stop(p);
  assert.equal(await c0.get(KEYS.lock), null, 'and releases it on shutdown');
});
