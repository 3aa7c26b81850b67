#!/usr/bin/env node
/**
 * Chaos run (`npm run chaos`): acks-late tasks over several worker processes while workers are killed with SIGKILL
 * and restarted, and Redis itself is killed with SIGKILL once (AOF on, `--fsync always` by default) while the
 * producer is still sending. At the end it counts, from the run log and the result backend: sent, completed, lost,
 * duplicated (by task id), ran early; the worker and Redis kills; and the recovery times. Pass/fail (exit 1):
 *
 * - lost: a task whose publish the producer saw acknowledged and that never completed. With `--fsync everysec` a
 *   task is excused (reported, not failed) only if its publish was acknowledged after the last write that survived
 *   the Redis kill (measured with a marker key written every 10 ms), i.e. inside the window Redis may lose;
 * - ran early: any ETA/countdown task that started before it was due;
 * - duplicated: more task ids run more than once than the kills can explain: each worker kill can repeat what the
 *   killed worker held (its prefetch window, concurrency × 4), the Redis kill what every worker held then, plus
 *   with everysec what the workers could have finished in the window Redis lost;
 * - `--fsync always` and the marker lost an acknowledged write; fewer worker kills than `--min-kills`; no Redis kill.
 *
 *   npm run chaos -- --tasks 4500 --workers 3 --kill-every 3 --work-ms 400 --fsync always
 */
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Celeriac } from 'celeriac';
import { startRedis } from '../test/helpers/redis.ts';

const { values: o } = parseArgs({
  options: {
    tasks: { type: 'string', default: '4500' },
    workers: { type: 'string', default: '3' },
    'kill-every': { type: 'string', default: '3' },
    'min-kills': { type: 'string', default: '10' },
    'eta-share': { type: 'string', default: '0.2' },
    'max-countdown': { type: 'string', default: '5' },
    'work-ms': { type: 'string', default: '400' },
    concurrency: { type: 'string', default: '20' },
    lease: { type: 'string', default: '3' },
    'send-seconds': { type: 'string', default: '45' },
    'redis-kill-at': { type: 'string', default: '20' },
    fsync: { type: 'string', default: 'always' },
    top: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '300' },
  },
});
if (o.fsync !== 'always' && o.fsync !== 'everysec') {
  console.error(`--fsync must be always or everysec, not ${o.fsync}`);
  process.exit(2);
}
const N = Number(o.tasks);
const WORKERS = Number(o.workers);
const KILL_EVERY = Number(o['kill-every']) * 1000;
const WORK_MS = Number(o['work-ms']);
const CONCURRENCY = Number(o.concurrency);
const PREFETCH = CONCURRENCY * 4; // the worker's default prefetch multiplier
const SEND_MS = Number(o['send-seconds']) * 1000;
const REDIS_KILL_AT = Number(o['redis-kill-at']) * 1000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'celeriac-chaos-'));
const runLog = join(dir, 'runs.log');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const t0 = Date.now();
const rel = (t: number) => `+${((t - t0) / 1000).toFixed(1)}s`;
const say = (m: string) => console.log(`[chaos ${rel(Date.now())}] ${m}`);

const redis = await startRedis({ aof: true, args: ['--appendfsync', o.fsync] });
const env = {
  ...process.env,
  CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1), CHAOS_RUN_LOG: runLog, CHAOS_LEASE: o.lease,
};

// a worker incarnation is `<slot>.<generation>`; the run log names it, so runs on a killed one are known
const generation = Array.from({ length: WORKERS }, () => 0);
const startedAt: number[] = [];
const killedIncarnations = new Map<string, number>(); // incarnation -> when it was killed
function startWorker(i: number): ChildProcess {
  generation[i]++;
  startedAt[i] = Date.now();
  return spawn(process.execPath, [join(ROOT, 'bin/celeriac'), '-A', join(ROOT, 'chaos/app.ts'), 'worker',
    '-c', String(CONCURRENCY), '-n', `chaos${i}@%h`, '-l', 'warning'],
  { env: { ...env, CHAOS_WORKER: `${i}.${generation[i]}` }, stdio: ['ignore', 'ignore', 'inherit'] });
}
const workers: ChildProcess[] = Array.from({ length: WORKERS }, (_, i) => startWorker(i));

const app = new Celeriac('chaos-producer', { broker: redis.url(0), backend: redis.url(1) });
const broker = await app.broker();
const results = await app.backend();
const admin = redis.client(0);
say(`Redis with AOF, appendfsync ${o.fsync}; ${WORKERS} workers × ${CONCURRENCY}; sending ${N} tasks of ${WORK_MS} ms ` +
  `over ${SEND_MS / 1000} s; a worker kill -9 every ${KILL_EVERY / 1000} s, Redis kill -9 at ${REDIS_KILL_AT / 1000} s`);

// --- the producer: N tasks in batches every 100 ms over --send-seconds, so publishes straddle the Redis kill
const ids: string[] = [];
const due = new Map<string, number>();
const ackedAt = new Map<string, number>(); // publish acknowledged to the producer
const unacknowledged = new Set<string>(); // publish rejected: the producer never saw it accepted
let sendingDone = false;
const sending = (async () => {
  const batches = Math.max(1, Math.ceil(SEND_MS / 100));
  const size = Math.ceil(N / batches);
  for (let k = 0, sent = 0; sent < N; k++) {
    const wait = t0 + k * 100 - Date.now();
    if (wait > 0) await sleep(wait);
    const batch = [];
    for (let j = 0; j < size && sent < N; j++, sent++) {
      const countdown = Math.random() < Number(o['eta-share']) ? Math.random() * Number(o['max-countdown']) : 0;
      const dueAt = Math.ceil(Date.now() + countdown * 1000);
      const m = app.prepareMessage('chaos.record', [dueAt, WORK_MS], {}, countdown ? { eta: new Date(dueAt) } : {});
      ids.push(m.id);
      due.set(m.id, countdown ? dueAt : 0);
      batch.push(m);
    }
    try {
      await broker.publish(batch);
      const now = Date.now();
      for (const m of batch) ackedAt.set(m.id, now);
    } catch (err) {
      for (const m of batch) unacknowledged.add(m.id);
      say(`publish of ${batch.length} rejected (not counted as sent): ${(err as Error).message}`);
    }
  }
  sendingDone = true;
  say(`sent ${ackedAt.size} tasks (${[...due.values()].filter(Boolean).length} with a countdown), ` +
    `${unacknowledged.size} publishes rejected`);
})();

// --- the marker: `SET chaos.clock <seq>` every 10 ms until the Redis kill; the value that survives the kill says
// up to where Redis kept its writes (AOF is a prefix: every write executed before the surviving one survived)
const marker = redis.client(2);
const markerSentAt: number[] = [0];
let markerAcked = 0;
let markerOn = true;
const markerLoop = (async () => {
  for (let seq = 1; markerOn; seq++) {
    markerSentAt[seq] = Date.now();
    await marker.set('chaos.clock', String(seq));
    markerAcked = seq;
    await sleep(10);
  }
})();

// --- completion: results of the acknowledged tasks (and of rejected publishes that landed anyway)
const done = new Set<string>();
async function refreshDone(all = false): Promise<void> {
  const todo = ids.filter((id) => all || !done.has(id));
  for (let i = 0; i < todo.length; i += 1000) {
    const chunk = todo.slice(i, i + 1000);
    const metas = await results.getMany(chunk);
    metas.forEach((m, k) => {
      if (m?.status === 'SUCCESS') done.add(chunk[k]);
      else if (all) done.delete(chunk[k]);
    });
  }
}

let kills = 0;
const recoveries: number[] = [];
type RedisKill = { at: number; backAt: number; downMs: number; recoveryMs: number | null; survivingSeq: number;
  ackedSeq: number; lostWrites: number; lostWindowMs: number };
let rk = null as RedisKill | null;
let doneAtRedisKill = 0;
const deadline = t0 + Number(o.timeout) * 1000;
let lastKill = Date.now();
let timedOut = true;
while (Date.now() < deadline) {
  await sleep(250);
  await refreshDone().catch(() => {});
  if (rk && rk.recoveryMs === null && done.size > doneAtRedisKill) rk.recoveryMs = Date.now() - rk.at;
  if (sendingDone && [...ackedAt.keys()].every((id) => done.has(id))) {
    timedOut = false;
    break;
  }
  if (!rk && Date.now() - t0 >= REDIS_KILL_AT) {
    markerOn = false;
    await markerLoop;
    doneAtRedisKill = done.size;
    const at = Date.now();
    say(`killing Redis with kill -9 (AOF on, appendfsync ${o.fsync}); ${done.size}/${ids.length} sent so far done`);
    await redis.restart(); // SIGKILL, then the same port and AOF directory
    const backAt = Date.now();
    const survivingSeq = Number(await marker.get('chaos.clock').catch(() => null) ?? 0);
    const lostWrites = markerAcked - survivingSeq;
    rk = { at, backAt, downMs: backAt - at, recoveryMs: null, survivingSeq, ackedSeq: markerAcked, lostWrites,
      lostWindowMs: lostWrites > 0 ? at - markerSentAt[survivingSeq + 1] : 0 };
    say(`Redis is back after ${rk.downMs} ms; marker: ${markerAcked} acknowledged, ${survivingSeq} survived` +
      (lostWrites > 0 ? ` (Redis lost its last ${rk.lostWindowMs} ms of writes)` : ' (no acknowledged write lost)'));
  }
  if (Date.now() - lastKill >= KILL_EVERY) {
    lastKill = Date.now();
    // kill a worker that has been up a while (one still starting holds nothing), else any
    const ready = workers.map((_, i) => i).filter((i) => Date.now() - startedAt[i] >= KILL_EVERY / 2);
    const pool = ready.length ? ready : workers.map((_, i) => i);
    const i = pool[Math.floor(Math.random() * pool.length)];
    const snapshot = await admin.zrange('celeriac.leases', 0, -1, 'WITHSCORES').catch(() => [] as string[]);
    workers[i].kill('SIGKILL');
    killedIncarnations.set(`${i}.${generation[i]}`, Date.now());
    kills++;
    const killedAt = Date.now();
    workers[i] = startWorker(i);
    say(`kill -9 worker ${i} (${snapshot.length / 2} reservations live across workers); ${done.size}/${ids.length} done`);
    // recovery time: until every reservation live at the kill is acked, restored, or renewed by a live worker;
    // the dead worker's can only be restored, so this is the time its messages took to come back
    void (async () => {
      const pending = new Map<string, number>();
      for (let k = 0; k < snapshot.length; k += 2) pending.set(snapshot[k], Number(snapshot[k + 1]));
      while (pending.size > 0 && Date.now() < deadline) {
        const tags = [...pending.keys()];
        const scores = await admin.zmscore('celeriac.leases', ...tags).catch(() => tags.map(() => '0'));
        tags.forEach((t, k) => {
          if (scores[k] === null || Number(scores[k]) > pending.get(t)!) pending.delete(t);
        });
        if (pending.size > 0) await sleep(50);
      }
      if (snapshot.length > 0) recoveries.push(Date.now() - killedAt);
    })();
  }
}
markerOn = false;
for (const w of workers) w.kill('SIGTERM');
await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
await sending;
await refreshDone(true);

// --- the run log: every start of every task, with the worker incarnation that ran it
type Run = { at: number; worker: string };
const runs = new Map<string, Run[]>();
let early = 0;
if (existsSync(runLog)) {
  for (const line of readFileSync(runLog, 'utf8').split('\n')) {
    if (!line) continue;
    const [id, , ranAt, worker] = line.split(' ');
    const list = runs.get(id) ?? [];
    list.push({ at: Number(ranAt), worker });
    runs.set(id, list);
    const d = due.get(id) ?? 0;
    if (d && Number(ranAt) < d) {
      early++;
      if (early <= 5) say(`ran early: ${id} by ${d - Number(ranAt)} ms`);
    }
  }
}

// --- lost: acknowledged publishes that never completed; with everysec, those acknowledged inside the window Redis
// lost are reported apart (Redis's documented loss), the rest fail the run
const lostIds = [...ackedAt.keys()].filter((id) => !done.has(id));
const durableUntil = rk ? markerSentAt[rk.survivingSeq] ?? 0 : Infinity;
const inLostWindow = (id: string) => o.fsync === 'everysec' && rk !== null && rk.lostWrites > 0 &&
  ackedAt.get(id)! >= durableUntil && ackedAt.get(id)! <= rk.at;
const lostExcused = lostIds.filter(inLostWindow);
const lost = lostIds.length - lostExcused.length;
const unackedNeverRan = [...unacknowledged].filter((id) => !runs.has(id)).length;

// --- duplicates by task id, each with its cause: an earlier run on a worker later killed; or an earlier run that
// was under way when Redis was killed; or neither (unexplained)
const dupes = [...runs.entries()].filter(([, r]) => r.length > 1).map(([id, r]) => {
  r.sort((a, b) => a.at - b.at);
  // each repeat must follow a kill of the worker of the run before it, or the Redis kill between the two runs
  const causes = r.slice(1).map((next, k) => {
    const killed = killedIncarnations.get(r[k].worker);
    if (killed !== undefined && r[k].at <= killed && killed <= next.at) return 'worker kill';
    if (rk && r[k].at <= rk.backAt && next.at >= rk.at) return 'Redis kill';
    return 'unexplained';
  });
  const cause = causes.includes('unexplained') ? 'unexplained' : causes.includes('Redis kill') ? 'Redis kill' : 'worker kill';
  return { id, runs: r.length, cause, on: r.map((x) => `${x.worker}${killedIncarnations.has(x.worker) ? '†' : ''}@${rel(x.at)}`) };
});
dupes.sort((a, b) => b.runs - a.runs || a.id.localeCompare(b.id));
const duplicated = dupes.length;
const extraRuns = dupes.reduce((s, d) => s + d.runs - 1, 0);
const byCause = (c: string) => dupes.filter((d) => d.cause === c).length;
// a worker kill can repeat only what the killed worker held: tasks running, and tasks finished whose result and ack
// were still on their way (acks are batched); both within its prefetch window. The Redis kill: what every worker held
// (leases can run out while Redis is down), plus with a lost window what each slot could finish in it.
const duplicatesAllowed = kills * PREFETCH +
  (rk ? WORKERS * (PREFETCH + CONCURRENCY * Math.ceil(rk.lostWindowMs / WORK_MS)) : 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const failures: string[] = [];
if (lost > 0) failures.push(`${lost} acknowledged tasks lost`);
if (early > 0) failures.push(`${early} tasks ran early`);
if (duplicated > duplicatesAllowed) failures.push(`${duplicated} duplicated ids > ${duplicatesAllowed} allowed`);
if (!rk) failures.push('Redis was never killed (the run ended before --redis-kill-at)');
if (rk && o.fsync === 'always' && rk.lostWrites > 0) failures.push(`appendfsync always lost ${rk.lostWrites} acknowledged marker writes`);
if (kills < Number(o['min-kills'])) failures.push(`${kills} worker kills < --min-kills ${o['min-kills']}`);
if (timedOut) failures.push(`timed out after ${o.timeout} s`);

const summary = {
  sent: ackedAt.size, publishRejected: unacknowledged.size, completed: [...ackedAt.keys()].filter((id) => done.has(id)).length,
  lost, lostInFsyncWindow: lostExcused.length, ranEarly: early,
  duplicated, extraRuns, duplicatesAllowed,
  duplicatedBy: { workerKill: byCause('worker kill'), redisKill: byCause('Redis kill'), unexplained: byCause('unexplained') },
  workerKills: kills, redisKills: rk ? 1 : 0, redisKillSignal: 'SIGKILL', fsync: o.fsync,
  redis: rk && { downMs: rk.downMs, recoveryMs: rk.recoveryMs, markerAcked: rk.ackedSeq, markerSurvived: rk.survivingSeq,
    lostWrites: rk.lostWrites, lostWindowMs: rk.lostWindowMs },
  workerRecoveryMs: recoveries.length ? { n: recoveries.length, max: Math.max(...recoveries), median: median(recoveries) } : null,
  seconds: Math.round((Date.now() - t0) / 1000), pass: failures.length === 0,
};
if (dupes.length) {
  say(`duplicated task ids (top ${Math.min(Number(o.top), dupes.length)} of ${dupes.length}; † = on a worker later killed):`);
  for (const d of dupes.slice(0, Number(o.top))) say(`  ${d.id} ran ${d.runs}× (${d.cause}): ${d.on.join(', ')}`);
  for (const d of dupes.filter((x) => x.cause === 'unexplained').slice(0, Number(o.top))) {
    say(`  unexplained duplicate ${d.id}: ${d.on.join(', ')}`);
  }
}
if (lostExcused.length) say(`${lostExcused.length} tasks acknowledged inside the ${rk!.lostWindowMs} ms Redis lost (everysec) never ran: reported, not failed`);
if (unackedNeverRan) say(`${unackedNeverRan} tasks whose publish was rejected never ran (not counted as sent)`);
if (lost > 0) {
  // where are they? a loss must be explained, not just counted
  const where = async (id: string) => {
    const found: string[] = [];
    for (const key of await admin.keys('*')) {
      const type = await admin.type(key);
      const dump = type === 'list' ? (await admin.lrange(key, 0, -1)).join('\n') : type === 'hash'
        ? JSON.stringify(await admin.hgetall(key)) : type === 'zset' ? (await admin.zrange(key, 0, -1)).join('\n') : '';
      if (dump.includes(id)) found.push(`${key} (${type})`);
    }
    return found;
  };
  for (const id of lostIds.filter((x) => !inLostWindow(x)).slice(0, 5)) {
    say(`lost ${id} (acknowledged ${rel(ackedAt.get(id)!)}, ${runs.get(id)?.length ?? 0} runs): found in ${JSON.stringify(await where(id))}`);
  }
}
console.log(JSON.stringify(summary));
console.log(`sent ${summary.sent} / completed ${summary.completed} / lost ${lost} / duplicated ${duplicated} ids ` +
  `(${extraRuns} extra runs, ${duplicatesAllowed} allowed) / ran-early ${early} — ${kills} worker kills (kill -9), ` +
  `${rk ? 1 : 0} Redis kill -9 (appendfsync ${o.fsync}), ${summary.seconds} s: ${failures.length ? `FAIL: ${failures.join('; ')}` : 'PASS'}`);
await app.close();
admin.disconnect();
await redis.dispose();
process.exit(failures.length ? 1 : 0);
