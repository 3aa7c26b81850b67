// Real worker processes killed for real: SIGKILL mid-task (the task runs again elsewhere), SIGTERM (warm: in-flight
// finishes, nothing reserved is lost), a second signal (cold: the running task's message goes back).
import { closeAll } from '../helpers/lifecycle.ts';
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, type Proc } from '../helpers/processes.ts';

let redis: RedisServer;
let app: Celeriac;
const procs: Proc[] = [];
const dir = mkdtempSync(join(tmpdir(), 'celeriac-crash-'));
let runLog = '';
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

function env(): Record<string, string> {
  return {
    CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1), TEST_RUN_LOG: runLog, TEST_LEASE_TIMEOUT: '2',
  };
}

async function worker(args: string[] = []): Promise<Proc> {
  const p = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', ...args], env());
  procs.push(p);
  await p.waitFor(' ready.');
  return p;
}

function runs(): string[] {
  return existsSync(runLog) ? readFileSync(runLog, 'utf8').trim().split('\n').filter(Boolean) : [];
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}; runs: ${runs().join(' | ')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function freshApp(): Celeriac {
  runLog = join(dir, `runs-${++n}.log`);
  app = new Celeriac('crash', { broker: redis.url(0), backend: redis.url(1) });
  return app;
}

test('SIGKILL mid-task: the task runs again on another worker within the lease and its result is stored', async () => {
  freshApp();
  const a = await worker(['-n', 'a@%h']);
  const res = await app.sendTask('basic.sleepy', [1.5, 'k1']);
  await until(() => runs().some((l) => l.startsWith('start k1')), 10_000, 'task started on a');
  a.kill('SIGKILL');
  await a.exited;
  const killedAt = Date.now();
  await worker(['-n', 'b@%h']);
  assert.equal(await res.get({ timeout: 60_000 }), 'k1');
  const recovery = Date.now() - killedAt;
  // the lease (2 s) plus starting worker b; generous for a loaded machine, and still far from the 1 h visibility
  // timeout that would apply without leases
  assert.ok(recovery < 20_000, `recovered in ${recovery} ms (lease 2 s)`);
  const starts = runs().filter((l) => l.startsWith('start k1'));
  const dones = runs().filter((l) => l.startsWith('done k1'));
  assert.equal(starts.length, 2, 'ran once on a (killed) and once on b');
  assert.equal(dones.length, 1);
  const c0 = redis.client(0);
  assert.equal(await c0.hlen('unacked'), 0);
});

test('a long task on a live worker is never handed to a second worker (leases are renewed)', async () => {
  freshApp();
  await worker(['-n', 'a@%h']);
  const res = await app.sendTask('basic.sleepy', [5, 'long']);
  await until(() => runs().some((l) => l.startsWith('start long')), 10_000, 'long task started');
  await worker(['-n', 'b@%h']);
  assert.equal(await res.get({ timeout: 20_000 }), 'long');
  assert.equal(runs().filter((l) => l.startsWith('start long')).length, 1, 'ran exactly once despite a 2 s lease');
});

test('SIGTERM: warm shutdown finishes the running task, gives back the rest; nothing is lost', async () => {
  freshApp();
  const a = await worker(['-c', '1']);
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push((await app.sendTask('basic.sleepy', [0.4, `w${i}`])).id);
  await until(() => runs().some((l) => l.startsWith('start w0')), 10_000, 'first task started');
  a.kill('SIGTERM');
  assert.equal(await a.exited, 0, a.out);
  assert.match(a.out, /Warm shutdown/);
  const c0 = redis.client(0);
  assert.equal(await c0.hlen('unacked'), 0, 'no reservation left behind');
  const finished = runs().filter((l) => l.startsWith('done')).length;
  assert.ok(finished >= 1, 'the running task finished');
  assert.equal(await c0.llen('celery'), 8 - finished, 'the rest are back on the queue');
  await worker();
  for (const id of ids) assert.equal(typeof (await app.AsyncResult(id).get({ timeout: 20_000 })), 'string');
  for (let i = 0; i < 8; i++) {
    assert.equal(runs().filter((l) => l.startsWith(`done w${i} `)).length, 1, `w${i} completed exactly once`);
  }
});

test('a second SIGTERM is a cold shutdown: the process exits at once and the running task comes back', async () => {
  freshApp();
  const a = await worker(['-c', '1']);
  const res = await app.sendTask('basic.sleepy', [30, 'cold']);
  await until(() => runs().some((l) => l.startsWith('start cold')), 10_000, 'task started');
  const t0 = Date.now();
  a.kill('SIGTERM');
  await a.waitFor('Warm shutdown');
  a.kill('SIGTERM');
  assert.equal(await a.exited, 0);
  assert.ok(Date.now() - t0 < 20_000, `cold shutdown took ${Date.now() - t0} ms: it does not wait for the 30 s task`);
  assert.match(a.out, /Cold shutdown/);
  const c0 = redis.client(0);
  assert.equal(await c0.llen('celery'), 1, 'the running task is back on its queue');
  const raw = JSON.parse((await c0.lindex('celery', 0))!);
  assert.equal(raw.headers.id, res.id);
  assert.equal(raw.headers.redelivered, true);
});
