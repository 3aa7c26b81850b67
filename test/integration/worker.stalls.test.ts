// A task that blocks its worker's event loop longer than the lease: the lease lapses, another worker takes the
// message over and runs it too. It must not go on for ever: once the task has succeeded, a redelivered copy is
// acknowledged without running, and a message recovered more than workerMaxRecoveries times goes to the dead letters.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac } from 'celeriac';
import { closeAll } from '../helpers/lifecycle.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, type Proc } from '../helpers/processes.ts';

let redis: RedisServer;
let app: Celeriac;
const procs: Proc[] = [];
const dir = mkdtempSync(join(tmpdir(), 'celeriac-stalls-'));
let n = 0;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  await closeAll(procs);
  await app?.close();
  await redis.flush();
});

async function workers(count: number, runLog: string, extra: Record<string, string> = {}): Promise<Proc[]> {
  const env = { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1), TEST_RUN_LOG: runLog,
    TEST_LEASE_TIMEOUT: '2', ...extra };
  const started = Array.from({ length: count }, (_, i) => celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info',
    '-c', '1', '-n', `stall${i}@%h`], env));
  procs.push(...started);
  await Promise.all(started.map((p) => p.waitFor(' ready.')));
  return started;
}

const runsIn = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settled(timeoutMs: number): Promise<void> {
  const r = redis.client(0);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [held, waiting] = await Promise.all([r.hlen('unacked'), r.llen('celery')]);
    if (held === 0 && waiting === 0) return;
    await sleep(200);
  }
  throw new Error(`the message was not settled within ${timeoutMs} ms`);
}

test('a task blocking the loop past its lease, two workers: it runs at most twice and its message ends acknowledged', async () => {
  const log = join(dir, `runs-${++n}.log`);
  const ws = await workers(2, log);
  app = new Celeriac('producer', { broker: redis.url(0), backend: redis.url(1) });
  const res = await app.sendTask('basic.block', [6]);
  assert.equal(await res.get({ timeout: 60_000 }), 6);
  await settled(60_000);
  await sleep(8_000); // long enough for one more lease to lapse and be recovered, if anything still held it
  const runs = runsIn(log);
  assert.ok(runs.length >= 1 && runs.length <= 2, `ran ${runs.length} times:\n${runs.join('\n')}`);
  assert.equal(await redis.client(0).hlen('unacked'), 0);
  if (runs.length === 2) {
    assert.ok(ws.some((w) => w.out.includes('already succeeded: redelivered message acknowledged without running')),
      'the copy recovered after the success was acknowledged, not run');
  }
});

test('recovered more often than workerMaxRecoveries: the message goes to the dead letters with the reason', async () => {
  const log = join(dir, `runs-${++n}.log`);
  await workers(2, log, { TEST_MAX_RECOVERIES: '1' });
  app = new Celeriac('producer', { broker: redis.url(0), backend: redis.url(1) });
  const res = await app.sendTask('basic.block', [6, true]);
  await settled(60_000);
  const broker = await app.broker();
  const deadline = Date.now() + 30_000;
  let letters = await broker.deadLetters();
  while (!letters.some((l) => l.raw.includes(res.id)) && Date.now() < deadline) {
    await sleep(200);
    letters = await broker.deadLetters();
  }
  const letter = letters.find((l) => l.raw.includes(res.id));
  assert.ok(letter, 'dead-lettered');
  assert.match(letter.reason, /recovered 2 times .*workerMaxRecoveries, 1/);
  assert.ok(runsIn(log).length <= 2, runsIn(log).join('\n'));
  assert.equal((await res.meta())?.status, 'FAILURE');
});
