// Revokes that last: a revoke is stored in the broker (celeriac.revoked on Redis, celeriac_revokes on SQLite), so a
// worker started later, or restarted, refuses the task too: a parked ETA task revoked while every worker is down
// ends REVOKED and never runs; `celeriac revoke` before any worker starts; a revoke broadcast by Python Celery, which
// a celeriac worker hears and stores for the workers that start after it.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Celeriac, Control, Worker, TaskRevokedError } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { celeriac, exec, type Proc } from '../helpers/processes.ts';
import { peerJson, until } from '../helpers/python.ts';

type Kind = 'redis' | 'sqlite';

let redis: RedisServer;
let dir: string;
let n = 0;
const cleanup: Array<() => Promise<void>> = [];

before(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'celeriac-revoke-'));
});
after(async () => {
  await redis.dispose();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis.flush();
  n++;
});

/** A fresh store per test: Redis flushed after each, a new SQLite file each time. */
function brokerUrl(kind: Kind): string {
  return kind === 'redis' ? redis.url(0) : `sqlite:///${join(dir, `revoke-${n}.db`)}`;
}

function backendUrl(kind: Kind): string {
  return kind === 'redis' ? redis.url(1) : brokerUrl(kind);
}

/** An app of its own (as another process would have), with a task that counts its runs. */
function makeApp(kind: Kind) {
  const app = new Celeriac('revoke', { broker: brokerUrl(kind), backend: backendUrl(kind) });
  const runs: string[] = [];
  const t = app.task('basic.order', (tag: string) => {
    runs.push(tag);
    return tag;
  });
  cleanup.push(() => app.close());
  return { app, t, runs };
}

async function startWorker(app: Celeriac, hostname = 'w@revoke') {
  const logs = quietLogger();
  const w = new Worker(app, { logger: logs, hostname });
  await w.start();
  cleanup.push(() => w.stop());
  return { w, logs };
}

/** A worker process (bin/celeriac, test/apps/basic) whose task runs are appended to `runLog`. */
async function workerProcess(kind: Kind, runLog: string): Promise<Proc> {
  const p = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info'], {
    CELERIAC_BROKER_URL: brokerUrl(kind), CELERIAC_RESULT_BACKEND: backendUrl(kind), TEST_RUN_LOG: runLog,
  });
  cleanup.push(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.kill('SIGKILL');
      await p.exited;
    }
  });
  await p.waitFor(' ready.', 30_000);
  return p;
}

const revokedError = (e: unknown) => e instanceof TaskRevokedError && e.why === 'revoked';

async function revokedAndGone(app: Celeriac, id: string): Promise<void> {
  const res = app.AsyncResult(id);
  await assert.rejects(res.get({ timeout: 30_000 }), revokedError);
  assert.equal(await res.state(), 'REVOKED');
  const broker = await app.broker();
  assert.equal(await broker.queueLength('celery'), 0, 'the message was acked, not left waiting');
}

for (const kind of ['redis', 'sqlite'] as const) {
  describe(`${kind}: a parked ETA task revoked stays revoked for workers that start later`, () => {
    test('revoked while parked, every worker stopped, a new worker started: REVOKED, never run', async () => {
      const producer = makeApp(kind);
      const first = makeApp(kind);
      const { w: w1, logs } = await startWorker(first.app, 'w1@revoke');
      const res = await producer.t.applyAsync(['parked'], {}, { countdown: 10 });
      await until(() => logs.lines.some((l) => l.includes(`[${res.id}] scheduled for`)), 'the task to be parked');
      await new Control(producer.app).revoke(res.id);
      await w1.stop(); // the last worker out puts parked messages back on their queues
      const fresh = makeApp(kind);
      await startWorker(fresh.app, 'w2@revoke');
      await revokedAndGone(producer.app, res.id);
      assert.deepEqual([...first.runs, ...fresh.runs], []);
    });

    test('revoked while every worker is down (the last one killed, the task still parked): REVOKED when it comes due, never run', async () => {
      const runLog = join(dir, `runs-${kind}-${n}.log`);
      const producer = makeApp(kind);
      const w1 = await workerProcess(kind, runLog);
      const sent = Date.now();
      const res = await producer.app.sendTask('basic.order', ['parked-while-down'], {}, { countdown: 10 });
      await w1.waitFor(`[${res.id}] scheduled for`);
      w1.kill('SIGKILL'); // no warm shutdown: the message stays parked in the broker
      await w1.exited;
      await new Control(producer.app).revoke(res.id);
      const w2 = await workerProcess(kind, runLog);
      await revokedAndGone(producer.app, res.id);
      assert.ok(Date.now() - sent >= 9_900, 'it was refused when it came due, not earlier');
      await w2.waitFor(`Discarding revoked task: basic.order[${res.id}]`);
      assert.ok(!existsSync(runLog) || !readFileSync(runLog, 'utf8').includes('parked-while-down'), 'never ran');
    });

    test('`celeriac revoke <id>` before any worker starts: the worker started afterwards refuses the task', async () => {
      const id = `cli-revoked-${kind}-${n}`;
      const { code, out } = await exec(celeriac(['revoke', id], {
        CELERIAC_BROKER_URL: brokerUrl(kind), CELERIAC_RESULT_BACKEND: backendUrl(kind),
      }));
      assert.equal(code, 0, out);
      assert.match(out, new RegExp(`revoked: ${id}`));
      const { app, t, runs } = makeApp(kind);
      await startWorker(app);
      await t.applyAsync(['cli'], {}, { taskId: id });
      const other = await t.delay('other');
      assert.equal(await other.get({ timeout: 10_000 }), 'other', 'other tasks run');
      await revokedAndGone(app, id);
      assert.deepEqual(runs, ['other']);
    });
  });
}

test('sqlite: a running worker refuses a task revoked by another process (`celeriac revoke`)', async () => {
  const { app, t, runs } = makeApp('sqlite');
  await startWorker(app);
  const id = `sqlite-live-${n}`;
  const { code, out } = await exec(celeriac(['revoke', id], { CELERIAC_BROKER_URL: brokerUrl('sqlite') }));
  assert.equal(code, 0, out);
  await t.applyAsync(['live'], {}, { taskId: id });
  await revokedAndGone(app, id);
  assert.deepEqual(runs, []);
});

describe('redis: a revoke broadcast by Python Celery', () => {
  test('a celeriac worker hears `celery control revoke` and stores it: a worker started later refuses the task', async () => {
    const id = `py-revoked-${n}`;
    const first = makeApp('redis');
    const { w: w1 } = await startWorker(first.app, 'w1@py-revoke');
    await peerJson(redis, ['revoke', id]);
    const broker = await first.app.broker();
    await until(async () => (await broker.revoked([id])).has(id), 'the worker to store the revoke', 10_000);
    assert.ok(w1.revokedIds().includes(id));
    const until3h = Number(await redis.client(0).zscore('celeriac.revoked', id));
    assert.ok(until3h > Date.now() + 3 * 3600_000 - 60_000, 'kept for REVOKE_EXPIRES (3 hours)');
    await w1.stop();
    const later = makeApp('redis');
    const { w: w2 } = await startWorker(later.app, 'w2@py-revoke');
    assert.ok(w2.revokedIds().includes(id), 'loaded at start');
    await later.t.applyAsync(['from-python'], {}, { taskId: id });
    await revokedAndGone(later.app, id);
    assert.deepEqual([...first.runs, ...later.runs], []);
  });

  test('a revoke addressed to one worker stays with it: nothing is stored', async () => {
    const { app, t, runs } = makeApp('redis');
    const { w } = await startWorker(app, 'only@revoke');
    const id = `addressed-${n}`;
    await new Control(app).revoke(id, { destination: ['only@revoke'] });
    await until(() => w.revokedIds().includes(id), 'the worker to hear it');
    await t.applyAsync(['addressed'], {}, { taskId: id });
    await revokedAndGone(app, id);
    assert.deepEqual(runs, []);
    assert.equal((await (await app.broker()).revoked([id])).size, 0);
  });
});
