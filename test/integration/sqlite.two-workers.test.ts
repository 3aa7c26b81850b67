// Two worker processes (the CLI) on one SQLite file drain 10,000 tasks: every task runs exactly once (counted from
// the run log both processes append to), every result is stored, nothing stays queued or reserved. Prints the rate.
// Then crash recovery on the same file: a worker killed with SIGKILL mid-task, its task finished by the other one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Celeriac } from 'celeriac';
import { celeriac, type Proc } from '../helpers/processes.ts';

const TASKS = 10_000;
const BATCH = 500;
const dir = mkdtempSync(join(tmpdir(), 'celeriac-two-workers-'));
const file = join(dir, 'celeriac.db');
const url = `sqlite:///${file}`;
const runLog = join(dir, 'runs.log');
const procs: Proc[] = [];
let app: Celeriac | null = null;

after(async () => {
  for (const p of procs) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
    await p.exited;
  }
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = () => (existsSync(runLog) ? readFileSync(runLog, 'utf8').split('\n').filter(Boolean) : []);

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('two worker processes on one SQLite file run each of 10,000 tasks exactly once', { timeout: 120_000 }, async (t) => {
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, TEST_RUN_LOG: runLog };
  for (const name of ['a', 'b']) {
    procs.push(celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-c', '50', '-n', `${name}@%h`], env));
  }
  await Promise.all(procs.map((p) => p.waitFor(' ready.', 30_000)));

  app = new Celeriac('two-workers', { broker: url, backend: url });
  const broker = await app.broker();
  const ids: string[] = [];
  const t0 = performance.now();
  for (let start = 0; start < TASKS; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(TASKS, start + BATCH); i++) {
      const m = app.prepareMessage('basic.order', [`t${i}`], {}, {});
      ids.push(m.id);
      batch.push(m);
    }
    await broker.publish(batch);
  }
  const published = performance.now() - t0;
  await until(() => lines().length >= TASKS, 60_000, `${TASKS} runs (have ${lines().length})`);
  const drained = performance.now() - t0;
  const rate = Math.round(TASKS / (drained / 1000));

  // give a duplicate run the chance to show up before counting
  await new Promise((r) => setTimeout(r, 500));
  const runs = lines();
  const seen = new Map<string, number>();
  for (const l of runs) seen.set(l, (seen.get(l) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no task ran twice');
  assert.equal(runs.length, TASKS);
  assert.equal(seen.size, TASKS);
  for (let i = 0; i < TASKS; i++) assert.ok(seen.has(`t${i}`), `t${i} ran`);

  const backend = await app.backend();
  const metas = await backend.getMany(ids);
  assert.equal(metas.filter((m) => m?.status === 'SUCCESS').length, TASKS, 'every result is stored');
  assert.equal(await broker.queueLength('celery'), 0);
  const db = new Database(file, { readonly: true });
  try {
    await until(() => (db.prepare('SELECT COUNT(*) FROM celeriac_messages').pluck().get() as number) === 0, 5_000,
      'every message acked');
  } finally {
    db.close();
  }

  const share = procs.map((p) => (p.out.match(/\] succeeded in /g) ?? []).length);
  assert.ok(share.every((n) => n > 0), `both workers ran tasks: ${share.join(' + ')}`);
  const report = `sqlite, 2 worker processes x -c 50: ${TASKS} tasks published in ${Math.round(published)} ms, ` +
    `drained in ${Math.round(drained)} ms = ${rate} tasks/s (split ${share.join(' + ')})`;
  t.diagnostic(report);
  console.log(report);

  for (const p of procs) p.kill('SIGTERM');
  const codes = await Promise.all(procs.map((p) => p.exited));
  assert.deepEqual(codes, [0, 0], 'warm shutdown');
  procs.splice(0);
});

test('SIGKILL mid-task: the other worker process runs the task after the lease', { timeout: 120_000 }, async () => {
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, TEST_RUN_LOG: runLog, TEST_LEASE_TIMEOUT: '2' };
  const start = (name: string) => {
    const p = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-c', '5', '-n', `${name}@%h`], env);
    procs.push(p);
    return p.waitFor(' ready.', 30_000).then(() => p);
  };
  const a = await start('crash-a');
  app ??= new Celeriac('two-workers', { broker: url, backend: url });
  const res = await app.sendTask('basic.sleepy', [1, 'k1']);
  await until(() => lines().includes(`start k1 ${res.id}`), 10_000, 'task started on a');
  a.kill('SIGKILL');
  await a.exited;
  const killedAt = Date.now();
  await start('crash-b');
  assert.equal(await res.get({ timeout: 60_000 }), 'k1');
  const recovery = Date.now() - killedAt;
  // the lease (2 s) plus starting worker b, expected in a few seconds; the bound is generous for a loaded machine
  assert.ok(recovery < 20_000, `recovered in ${recovery} ms (lease 2 s)`);
  assert.equal(lines().filter((l) => l.startsWith('start k1')).length, 2, 'ran on a (killed), then on b');
  assert.equal(lines().filter((l) => l.startsWith('done k1')).length, 1);
});
