/**
 * The three systems the benchmark compares on one Redis, each in its own databases: how to enqueue, how to start one
 * worker process, how to count finished tasks and how to time call→result. Each worker stores results.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Queue, QueueEvents } from 'bullmq';
import { Celeriac } from 'celeriac';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER_DIR = fileURLToPath(new URL('../test/peer/', import.meta.url));
export const PYTHON = '/usr/bin/python3';
export const celeryAvailable = (): boolean =>
  existsSync(PYTHON) && existsSync(`${PEER_DIR}celery_peer.py`) &&
  spawnOk(PYTHON, ['-c', 'import celery, redis']);

function spawnOk(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

export interface WorkerProc {
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface System {
  name: string;
  guarantees: string;
  /** Databases the system writes (for counting commands and resetting). */
  enqueueOneByOne(n: number): Promise<number>;
  enqueueBulk(n: number): Promise<number | null>;
  /** Start one worker process; with `ready`, resolve only once it consumes (for latency runs). */
  startWorker(ready: boolean): Promise<WorkerProc>;
  /** Tasks whose result is stored. */
  finished(): Promise<number>;
  /** Milliseconds from call to result for each call, offered at `rate` per second for `seconds`. */
  latency(rate: number, seconds: number): Promise<number[]>;
  close(): Promise<void>;
}

function proc(child: ChildProcess): WorkerProc {
  return {
    child,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    }),
  };
}

async function until(cond: () => Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Seconds to make `n` single calls, up to 1000 in flight at once. */
async function oneByOne(n: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const window: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    window.push(call(i));
    if (window.length >= 1000) await Promise.all(window.splice(0));
  }
  await Promise.all(window);
  return (performance.now() - t0) / 1000;
}

/** Seconds to send `n` calls in batches of 1000. */
async function inChunks(n: number, send: (from: number, size: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) await send(i, Math.min(1000, n - i));
  return (performance.now() - t0) / 1000;
}

/** Offer calls at a fixed rate (in small bursts, timers cannot tick every 2 ms) and time each to its result. */
async function offer(rate: number, seconds: number, call: () => Promise<() => Promise<unknown>>): Promise<number[]> {
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  const waits: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const ahead = due - performance.now();
    if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    const t0 = performance.now();
    const wait = await call();
    waits.push(wait().then(() => void latencies.push(performance.now() - t0)));
  }
  await Promise.all(waits);
  return latencies;
}

export function celeriacSystem(port: number): System {
  const broker = `redis://127.0.0.1:${port}/0`;
  const backend = `redis://127.0.0.1:${port}/1`;
  const app = new Celeriac('bench-producer', { broker, backend });
  const noop = app.task('bench.noop', (n: number) => n);
  const results = new Redis({ port, db: 1 });
  const brokerDb = new Redis({ port, db: 0 });
  return {
    name: 'celeriac',
    guarantees: 'acks late (at-least-once), results stored, Celery protocol v2',
    enqueueOneByOne: (n) => oneByOne(n, (i) => noop.delay(i)),
    enqueueBulk: (n) => inChunks(n, (from, size) => noop.applyMany(Array.from({ length: size }, (_, k) => [from + k] as [number]))),
    async startWorker(ready) {
      // run as a user runs it: the installed executable on compiled JavaScript
      const child = spawn(`${ROOT}bin/celeriac`, ['-A', `${ROOT}bench/app.mjs`, 'worker', '-c', '100',
        '-l', 'warning'], { env: { ...process.env, CELERIAC_BROKER_URL: broker, CELERIAC_RESULT_BACKEND: backend },
        stdio: ['ignore', 'ignore', 'inherit'] });
      if (ready) await until(async () => (await brokerDb.zcard('celeriac.workers')) > 0, 30_000, 'the celeriac worker');
      return proc(child);
    },
    finished: () => results.dbsize(),
    latency: (rate, seconds) => offer(rate, seconds, async () => {
      const r = await noop.delay(1);
      return () => r.get({ timeout: 30_000 });
    }),
    async close() {
      await app.close();
      results.disconnect();
      brokerDb.disconnect();
    },
  };
}

export function bullmqSystem(port: number): System {
  const connection = { host: '127.0.0.1', port, db: 2 };
  const queue = new Queue('bench', { connection });
  queue.setMaxListeners(0); // thousands of concurrent add() calls each listen for close
  let events: QueueEvents | null = null;
  return {
    name: 'BullMQ',
    guarantees: 'at-least-once (lock + stalled check), return values stored',
    enqueueOneByOne: (n) => oneByOne(n, (i) => queue.add('noop', { n: i })),
    enqueueBulk: (n) => inChunks(n, (from, size) =>
      queue.addBulk(Array.from({ length: size }, (_, k) => ({ name: 'noop', data: { n: from + k } })))),
    async startWorker(ready) {
      const child = spawn(process.execPath, [`${ROOT}bench/bullmq-worker.mjs`], {
        cwd: ROOT, env: { ...process.env, BENCH_REDIS_PORT: String(port), BENCH_REDIS_DB: '2' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const started = new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d) => d.toString().includes('ready') && resolve());
        child.once('exit', () => reject(new Error('the BullMQ worker exited')));
      });
      if (ready) await started;
      return proc(child);
    },
    finished: async () => (await queue.getJobCounts('completed')).completed ?? 0,
    async latency(rate, seconds) {
      events ??= new QueueEvents('bench', { connection });
      await events.waitUntilReady();
      const ev = events;
      return offer(rate, seconds, async () => {
        const job = await queue.add('noop', { n: 1 });
        return () => job.waitUntilFinished(ev, 30_000);
      });
    },
    async close() {
      await events?.close();
      await queue.close();
    },
  };
}

export function celerySystem(port: number): System {
  const env = {
    ...process.env, CELERY_PEER_BROKER: `redis://127.0.0.1:${port}/3`, CELERY_PEER_BACKEND: `redis://127.0.0.1:${port}/4`,
    CELERY_PEER_DIR: PEER_DIR,
  };
  const results = new Redis({ port, db: 4 });
  const brokerDb = new Redis({ port, db: 3 });
  const py = (args: string[]) => new Promise<any>((resolve, reject) => {
    const child = spawn(PYTHON, [`${ROOT}bench/celery_bench.py`, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`celery_bench.py ${args[0]} exited ${code}`))));
  });
  return {
    name: 'Celery (Python)',
    guarantees: 'early ack (Celery default: at-most-once on a crash), results stored',
    enqueueOneByOne: async (n) => (await py(['enqueue', String(n)])).seconds,
    enqueueBulk: async () => null,
    async startWorker(ready) {
      const child = spawn(PYTHON, [`${PEER_DIR}celery_peer.py`, 'worker', '--loglevel', 'WARNING', '-n', 'bench@%h'], {
        env, stdio: ['ignore', 'ignore', 'ignore'],
      });
      if (ready) {
        await until(async () => (await brokerDb.smembers('_kombu.binding.celery.pidbox')).length > 0, 60_000, 'the Celery worker');
        await new Promise((r) => setTimeout(r, 1500)); // mingle (a 1 s wait for peers) comes before consuming
      }
      return proc(child);
    },
    finished: () => results.dbsize(),
    latency: async (rate, seconds) => ((await py(['latency', String(rate), String(seconds)])).latencies as number[]).map((s) => s * 1000),
    async close() {
      results.disconnect();
      brokerDb.disconnect();
    },
  };
}

/** Resident memory now (VmRSS) of `pid` and its children, in MB. */
export function rssMb(pid: number): number {
  return memoryMb(pid, 'VmRSS');
}

/** The high-water mark of resident memory (VmHWM) of `pid` and its children, in MB. */
export function peakRssMb(pid: number): number {
  return memoryMb(pid, 'VmHWM');
}

function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kids = (p: number): number[] => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...kids(all[i]));
  let kb = 0;
  for (const p of all) {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}
