#!/usr/bin/env node
/**
 * Chaos run (`npm run chaos`): acks-late tasks over several worker processes while workers are SIGKILLed and
 * restarted and Redis itself is restarted once (AOF on). At the end it counts, from the run log and the result
 * backend: sent, completed, lost, duplicated, ran early; and the time from a kill to the dead worker's messages
 * being back on the queue. Exits 1 on any loss or early run, or more duplicates than the killed workers held.
 *
 *   npm run chaos -- --tasks 10000 --workers 3 --kill-every 3 --eta-share 0.2
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
    tasks: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '3' },
    'kill-every': { type: 'string', default: '3' },
    'eta-share': { type: 'string', default: '0.2' },
    'max-countdown': { type: 'string', default: '5' },
    'work-ms': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
    lease: { type: 'string', default: '3' },
    timeout: { type: 'string', default: '300' },
  },
});
const N = Number(o.tasks);
const WORKERS = Number(o.workers);
const KILL_EVERY = Number(o['kill-every']) * 1000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'celeriac-chaos-'));
const runLog = join(dir, 'runs.log');

const redis = await startRedis({ aof: true });
const env = {
  ...process.env,
  CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1), CHAOS_RUN_LOG: runLog, CHAOS_LEASE: o.lease,
};
const say = (m: string) => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const t0 = Date.now();

function startWorker(i: number): ChildProcess {
  const p = spawn(process.execPath, [join(ROOT, 'bin/celeriac'), '-A', join(ROOT, 'chaos/app.ts'), 'worker',
    '-c', o.concurrency!, '-n', `chaos${i}@%h`, '-l', 'warning'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return p;
}

const workers: ChildProcess[] = Array.from({ length: WORKERS }, (_, i) => startWorker(i));
const app = new Celeriac('chaos-producer', { broker: redis.url(0), backend: redis.url(1) });
const broker = await app.broker();
const ids: string[] = [];
const due = new Map<string, number>();
for (let i = 0; i < N; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(N, i + 500); j++) {
    const countdown = Math.random() < Number(o['eta-share']) ? Math.random() * Number(o['max-countdown']) : 0;
    const dueAt = Math.ceil(Date.now() + countdown * 1000);
    const m = app.prepareMessage('chaos.record', [dueAt, Number(o['work-ms'])], {}, countdown ? { eta: new Date(dueAt) } : {});
    ids.push(m.id);
    due.set(m.id, countdown ? dueAt : 0);
    batch.push(m);
  }
  await broker.publish(batch);
}
say(`sent ${N} tasks (${[...due.values()].filter(Boolean).length} with a countdown) to ${WORKERS} workers`);

let kills = 0;
const recoveries: number[] = [];
let redisRestarted = false;
const results = await app.backend();
const countDone = async () => {
  let done = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    const metas = await results.getMany(ids.slice(i, i + 1000)).catch(() => []);
    done += metas.filter((m) => m?.status === 'SUCCESS').length;
  }
  return done;
};
const deadline = Date.now() + Number(o.timeout) * 1000;
let lastKill = Date.now();
let completed = 0;
const admin = redis.client(0);
while (Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 250));
  completed = await countDone().catch(() => completed);
  if (completed >= N) break;
  if (!redisRestarted && completed > N / 3) {
    redisRestarted = true;
    say('restarting Redis (AOF on)');
    await redis.restart({ graceful: true });
    say('Redis is back');
  }
  if (Date.now() - lastKill >= KILL_EVERY) {
    lastKill = Date.now();
    const i = Math.floor(Math.random() * WORKERS);
    const snapshot = await admin.zrange('celeriac.leases', 0, -1, 'WITHSCORES').catch(() => [] as string[]);
    workers[i].kill('SIGKILL');
    kills++;
    const killedAt = Date.now();
    workers[i] = startWorker(i);
    say(`killed worker ${i} (${snapshot.length / 2} reservations live across workers); ${completed}/${N} done`);
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
        if (pending.size > 0) await new Promise((r) => setTimeout(r, 50));
      }
      if (snapshot.length > 0) recoveries.push(Date.now() - killedAt);
    })();
  }
}
for (const w of workers) w.kill('SIGTERM');
await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));

const runs = new Map<string, number>();
let early = 0;
if (existsSync(runLog)) {
  for (const line of readFileSync(runLog, 'utf8').split('\n')) {
    if (!line) continue;
    const [id, , ranAt] = line.split(' ');
    runs.set(id, (runs.get(id) ?? 0) + 1);
    const d = due.get(id) ?? 0;
    if (d && Number(ranAt) < d) {
      early++;
      if (early <= 5) say(`ran early: ${id} by ${d - Number(ranAt)} ms`);
    }
  }
}
const lost = N - completed;
const duplicated = [...runs.values()].filter((n) => n > 1).length;
// a kill can repeat only what the killed worker held: tasks running, and tasks finished whose result and ack were
// still on their way (acks are batched); both are bounded by its prefetch window (concurrency × 4)
const duplicatesAllowed = kills * Number(o.concurrency) * 4;
const never = ids.filter((id) => !runs.has(id)).length;
const summary = {
  sent: N, completed, lost, neverRan: never, duplicated, duplicatesAllowed, ranEarly: early, workerKills: kills, redisRestarts: redisRestarted ? 1 : 0,
  recoveryMs: recoveries.length ? { max: Math.max(...recoveries), median: recoveries.sort((a, b) => a - b)[recoveries.length >> 1] } : null,
  seconds: Math.round((Date.now() - t0) / 1000),
};
console.log(JSON.stringify(summary));
console.log(`sent ${N} / completed ${completed} / lost ${lost} / duplicated ${duplicated} / ran-early ${early} ` +
  `(${kills} worker kills, ${redisRestarted ? 1 : 0} Redis restart)`);
if (lost > 0) {
  // where are they? a loss must be explained, not just counted
  const missing = ids.filter((id) => !runs.has(id)).slice(0, 5);
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
  for (const id of missing) say(`lost ${id}: found in ${JSON.stringify(await where(id))}`);
}
await app.close();
admin.disconnect();
await redis.dispose();
process.exit(lost > 0 || early > 0 || duplicated > duplicatesAllowed ? 1 : 0);
