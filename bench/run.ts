#!/usr/bin/env node
/**
 * `npm run bench [-- --quick]`: celeriac vs BullMQ vs Python Celery on one redis-server started here, same run.
 * Scenarios (each on a flushed Redis, several runs, median and range):
 *   enqueue one by one (many in flight) and in bulk; drain N pre-enqueued tasks with one worker process, results
 *   stored; call→result latency at a fixed offered rate; worker peak RSS; Redis commands per task (INFO commandstats).
 * Prints one table with the ratio celeriac/peer per row and writes bench/results/latest.json and latest.svg.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/redis.ts';
import { bullmqSystem, celeriacSystem, celerySystem, celeryAvailable, peakRssMb, rssMb, type System } from './systems.ts';
import { renderSvg } from './chart.ts';
import { embeddedDrain } from './embedded.ts';

const { values: o } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tasks: { type: 'string' },
    runs: { type: 'string' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string' },
    only: { type: 'string' },
  },
});
const quick = o.quick!;
const N = Number(o.tasks ?? (quick ? 10_000 : 30_000));
const RUNS = Number(o.runs ?? (quick ? 1 : 3));
const RATE = Number(o.rate);
const SECONDS = Number(o.seconds ?? (quick ? 4 : 10));
const PY_N = Math.max(500, Math.round(N / 10)); // Python Celery is ~20x slower: a smaller batch, same rates

const redis = await startRedis();
const admin = new Redis({ port: redis.port });
const systems: System[] = [celeriacSystem(redis.port), bullmqSystem(redis.port)];
let celeryNote = '';
if (celeryAvailable()) systems.push(celerySystem(redis.port));
else celeryNote = 'Python Celery skipped: /usr/bin/python3 with python3-celery not found (apt-get install python3-celery)';
const selected = o.only ? systems.filter((s) => o.only!.toLowerCase().split(',').some((n) => s.name.toLowerCase().startsWith(n))) : systems;

type Metric = { name: string; unit: string; higherIsBetter: boolean };
const METRICS: Metric[] = [
  { name: 'enqueue one by one', unit: 'tasks/s', higherIsBetter: true },
  { name: 'enqueue bulk', unit: 'tasks/s', higherIsBetter: true },
  { name: 'drain (1 worker process)', unit: 'tasks/s', higherIsBetter: true },
  { name: `latency p50 @${RATE}/s`, unit: 'ms', higherIsBetter: false },
  { name: `latency p99 @${RATE}/s`, unit: 'ms', higherIsBetter: false },
  { name: 'worker peak RSS', unit: 'MB', higherIsBetter: false },
  { name: 'Redis commands per task', unit: 'cmds', higherIsBetter: false },
  { name: 'worker idle RSS', unit: 'MB', higherIsBetter: false },
];
const samples = new Map<string, Map<string, number[]>>(); // system -> metric -> values
const add = (sys: string, metric: string, v: number | null) => {
  if (v === null || !Number.isFinite(v)) return;
  if (!samples.has(sys)) samples.set(sys, new Map());
  const m = samples.get(sys)!;
  if (!m.has(metric)) m.set(metric, []);
  m.get(metric)!.push(v);
};
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

async function commandCount(): Promise<number> {
  const info = await admin.info('commandstats');
  let total = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) total += Number(m[1]);
  return total;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

for (const sys of selected) {
  const n = sys.name.startsWith('Celery') ? PY_N : N;
  for (let run = 1; run <= RUNS; run++) {
    log(`${sys.name}: run ${run}/${RUNS}, ${n} tasks`);
    await admin.flushall();
    add(sys.name, METRICS[0].name, n / (await sys.enqueueOneByOne(n)));
    await admin.flushall();
    const bulk = await sys.enqueueBulk(n);
    add(sys.name, METRICS[1].name, bulk === null ? null : n / bulk);
    if (bulk === null) {
      await admin.flushall();
      await sys.enqueueOneByOne(n);
    }
    // drain: the queue is full; time from the first finished task to the last
    await admin.config('RESETSTAT');
    const before = await commandCount();
    const worker = await sys.startWorker(false);
    let first = 0;
    let firstCount = 0;
    const deadline = Date.now() + 600_000;
    for (;;) {
      const done = await sys.finished();
      if (!first && done > 0) {
        first = performance.now();
        firstCount = done;
      }
      if (done >= n || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const secs = (performance.now() - first) / 1000;
    add(sys.name, METRICS[2].name, (n - firstCount) / secs);
    add(sys.name, METRICS[6].name, ((await commandCount()) - before) / n);
    add(sys.name, METRICS[5].name, peakRssMb(worker.child.pid!));
    await worker.stop();
    // latency with a fresh worker on an empty queue
    await admin.flushall();
    const fresh = await sys.startWorker(true);
    await new Promise((r) => setTimeout(r, 300));
    add(sys.name, METRICS[7].name, rssMb(fresh.child.pid!));
    const lat = await sys.latency(RATE, SECONDS);
    add(sys.name, METRICS[3].name, pct(lat, 50));
    add(sys.name, METRICS[4].name, pct(lat, 99));
    await fresh.stop();
  }
}

// the embedded default, for scale: no Redis at all, two worker processes on one SQLite file
const embedded: number[] = [];
if (!o.only || o.only.toLowerCase().split(',').some((n) => 'celeriac'.startsWith(n))) {
  for (let run = 1; run <= RUNS; run++) {
    log(`celeriac embedded (SQLite, 2 worker processes): run ${run}/${RUNS}`);
    embedded.push(await embeddedDrain(Math.round(N / 3)));
  }
}

const median = (xs: number[]) => pct(xs, 50);
const fmt = (v: number | undefined) => (v === undefined ? 'n/a' : v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(v >= 10 ? 1 : 2));
const names = selected.map((s) => s.name);
const rows = METRICS.map((m) => {
  const cells = names.map((sys) => {
    const xs = samples.get(sys)?.get(m.name);
    return xs ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) } : null;
  });
  return { metric: m, cells };
});
const header = ['scenario', ...names.map((n) => `${n}`), ...names.slice(1).map((n) => `celeriac/${n}`)];
const table = rows.map(({ metric, cells }) => {
  const c0 = cells[0]?.median;
  const ratios = cells.slice(1).map((c) => (c && c0 !== undefined ? `${(c0 / c.median).toFixed(2)}x` : 'n/a'));
  return [`${metric.name} (${metric.unit}${metric.higherIsBetter ? ', higher is better' : ', lower is better'})`,
    ...cells.map((c) => (c ? `${fmt(c.median)} [${fmt(c.min)}–${fmt(c.max)}]` : 'n/a')), ...ratios];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(' | ');
console.log(`\nceleriac benchmark: ${N} tasks (Python Celery: ${PY_N}), ${RUNS} run(s), latency at ${RATE}/s for ${SECONDS}s, ` +
  `one redis-server ${(await admin.info('server')).match(/redis_version:(\S+)/)?.[1]} on this machine\n`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of table) console.log(line(r));
if (embedded.length) {
  console.log(`embedded: drain across 2 worker processes on one SQLite file (no Redis): ${fmt(median(embedded))} tasks/s ` +
    `[${fmt(Math.min(...embedded))}–${fmt(Math.max(...embedded))}], ${Math.round(N / 3)} tasks`);
}
console.log('\nmedian [min–max]; a ratio > 1 means celeriac has the larger number (better for rates, worse for ms/MB/cmds).');
for (const s of selected) console.log(`- ${s.name}: ${s.guarantees}`);
if (celeryNote) console.log(`- ${celeryNote}`);

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const json = { date: new Date().toISOString(), embeddedDrain: embedded.length ? median(embedded) : null, tasks: N, pythonTasks: PY_N, runs: RUNS, rate: RATE, seconds: SECONDS,
  systems: selected.map((s) => ({ name: s.name, guarantees: s.guarantees })),
  results: Object.fromEntries(rows.map(({ metric, cells }) => [metric.name,
    Object.fromEntries(names.map((n, i) => [n, cells[i]]))])) };
writeFileSync(new URL('./results/latest.json', import.meta.url), JSON.stringify(json, null, 2));
writeFileSync(new URL('./results/latest.svg', import.meta.url), renderSvg(json));
console.log('\nwritten: bench/results/latest.json, bench/results/latest.svg');

for (const s of systems) await s.close();
admin.disconnect();
await redis.dispose();
process.exit(0);
