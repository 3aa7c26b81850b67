// Remote control on the embedded SQLite broker, between processes: two worker processes (bin/celeriac, test/apps/basic)
// on one sqlite:// file answer `celeriac inspect ping` and `inspect active`, `celeriac revoke --terminate` stops a
// running task, `celeriac control rate_limit/time_limit` print their replies as `celery control` does, `celeriac
// control shutdown` stops both, and their heartbeats are kept (bounded) in the file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Celeriac, TaskRevokedError } from 'celeriac';
import { celeriac, exec, lastJsonLine, type Proc } from '../helpers/processes.ts';
import { until } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'celeriac-sqlite-control-'));
const file = join(dir, 'celeriac.db');
const url = `sqlite:///${file}`;
const runLog = join(dir, 'runs.log');
const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, TEST_RUN_LOG: runLog };
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
const cli = (args: string[]) => exec(celeriac(args, env));

test('two worker processes on one SQLite file: inspect, revoke --terminate, control, shutdown', { timeout: 120_000 }, async () => {
  for (const name of ['a', 'b']) {
    procs.push(celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-c', '5', '-n', `${name}@sqlite-control`], env));
  }
  await Promise.all(procs.map((p) => p.waitFor(' ready.', 30_000)));

  const ping = await cli(['inspect', 'ping', '--timeout', '2']);
  assert.equal(ping.code, 0, ping.out);
  assert.deepEqual(lastJsonLine(ping.out), { 'a@sqlite-control': { ok: 'pong' }, 'b@sqlite-control': { ok: 'pong' } });

  app = new Celeriac('sqlite-control', { broker: url, backend: url });
  const res = await app.sendTask('basic.sleepy', [6, 'long']);
  await until(() => lines().includes(`start long ${res.id}`), 'the task to start', 10_000);
  const active = await cli(['inspect', 'active', '--timeout', '2']);
  assert.equal(active.code, 0, active.out);
  const running = Object.entries(lastJsonLine(active.out) as Record<string, Array<{ id: string; name: string }>>)
    .filter(([, tasks]) => tasks.some((r) => r.id === res.id && r.name === 'basic.sleepy'));
  assert.equal(running.length, 1, `one worker runs it: ${active.out}`);

  const t0 = Date.now();
  const revoke = await cli(['revoke', '--terminate', res.id]);
  assert.equal(revoke.code, 0, revoke.out);
  await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'terminated');
  assert.ok(Date.now() - t0 < 5000, 'stopped well before the task would have ended (6 s)');

  // rate_limit / time_limit: the worker applies them where it can (PidboxWorker.setRateLimit / setTimeLimit)
  const rate = await cli(['control', 'rate_limit', 'basic.add', '10/s', '-d', 'a@sqlite-control']);
  assert.equal(rate.code, 0, rate.out);
  assert.equal(rate.out, '->  a@sqlite-control: OK\n        new rate limit set successfully\n');
  const bad = await cli(['control', 'rate_limit', 'basic.nope', '10/s', '-d', 'a@sqlite-control']);
  assert.equal(bad.out, '->  a@sqlite-control: ERROR\n        unknown task\n');
  const unknown = await cli(['control', 'time_limit', 'basic.nope', '1', '2', '-d', 'b@sqlite-control', '--json']);
  assert.equal(unknown.code, 0, unknown.out);
  const reply = lastJsonLine(unknown.out)['b@sqlite-control'];
  assert.equal(reply.error, 'unknown task', unknown.out);
  const limits = await cli(['control', 'time_limit', 'basic.add', '1', '2', '-d', 'b@sqlite-control']);
  assert.equal(limits.out, '->  b@sqlite-control: OK\n        time limits set successfully\n');
  const usage = await cli(['control', 'rate_limit', 'basic.add']);
  assert.equal(usage.code, 2, usage.out);
  assert.match(usage.out, /control rate_limit takes: <task_name> <rate_limit/);

  const db = new Database(file, { readonly: true });
  try {
    const kinds = db.prepare(`SELECT routing_key, COUNT(*) AS n FROM celeriac_events GROUP BY routing_key`).all() as
      Array<{ routing_key: string; n: number }>;
    const count = (k: string) => kinds.find((r) => r.routing_key === k)?.n ?? 0;
    assert.equal(count('worker.online'), 2, JSON.stringify(kinds));
    assert.ok(count('worker.heartbeat') >= 2, JSON.stringify(kinds));
  } finally {
    db.close();
  }

  const shutdown = await cli(['control', 'shutdown', '--timeout', '3']);
  assert.equal(shutdown.code, 0, shutdown.out);
  for (const node of ['a@sqlite-control', 'b@sqlite-control']) {
    assert.ok(shutdown.out.includes(`->  ${node}: OK\n        shutting down\n`), shutdown.out);
  }
  const codes = await Promise.all(procs.map((p) => p.exited));
  assert.deepEqual(codes, [0, 0], 'both stopped warmly');
  assert.equal(await app.AsyncResult(res.id).state(), 'REVOKED', 'the terminated task stays REVOKED');
  const none = await cli(['inspect', 'ping', '--timeout', '0.5']);
  assert.equal(none.code, 1);
  assert.match(none.out, /No nodes replied/);
});
