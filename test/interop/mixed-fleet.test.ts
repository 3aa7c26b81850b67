// TS and Python workers on the same Redis and the same queues: sharing a queue, recovering each other's unacked
// messages after a crash (kombu's `unacked`/`unacked_index` bookkeeping, docs/wire-format.md §5), and handing over
// ETA tasks when a worker stops (§6).
import { closeAll } from '../helpers/lifecycle.ts';
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { celeriac, type Proc } from '../helpers/processes.ts';
import { PyWorker, sleep, until } from '../helpers/python.ts';

let redis: RedisServer;
const open: Array<Worker | Celeriac | PyWorker | Proc> = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  await closeAll(open);
  // each test starts from an empty Redis (no worker registrations or parked messages left by the previous one)
  await redis.flush();
});

function makeApp(extra: ConstructorParameters<typeof Celeriac>[1] = {}): Celeriac {
  const app = new Celeriac('interop', { broker: redis.url(0), backend: redis.url(1), ...extra });
  open.push(app);
  return app;
}

async function startWorker(app: Celeriac, q: string, o: ConstructorParameters<typeof Worker>[1] = {}): Promise<Worker> {
  const w = new Worker(app, { logger: quietLogger(), queues: [q], ...o });
  await w.start();
  open.push(w);
  return w;
}

async function startPy(queues: string[], name: string, extra: string[] = [], env: Record<string, string> = {}): Promise<PyWorker> {
  const w = await PyWorker.start(redis, queues, name, extra, env);
  open.push(w);
  return w;
}

describe('TS and Python workers together', () => {
  test('both serve one queue: every task runs once, on one side or the other', async () => {
    const q = 'mixed.shared';
    const app = makeApp();
    let tsRuns = 0;
    app.task('celery_peer.add', async (a: number, b: number) => {
      tsRuns++;
      await sleep(20);
      return a + b;
    });
    const py = await startPy([q], 'py-shared@%h');
    await startWorker(app, q, { concurrency: 1, prefetchMultiplier: 1 });
    const results = [];
    for (let i = 0; i < 30; i++) results.push(await app.sendTask<number>('celery_peer.add', [i, 1000], {}, { queue: q }));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 15_000 })));
    assert.deepEqual(values, results.map((_, i) => i + 1000));
    const pyCount = () => (py.out.match(/Task celery_peer\.add\[[^\]]+\] succeeded/g) ?? []).length;
    // the Python log line may trail the stored result a little
    await until(() => tsRuns + pyCount() >= 30, 'every run to be logged', 5000).catch(() => {});
    await sleep(200);
    const pyRuns = pyCount();
    assert.equal(tsRuns + pyRuns, 30, `ts ${tsRuns} + py ${pyRuns}`);
    assert.ok(tsRuns > 0 && pyRuns > 0, `both sides ran tasks (ts ${tsRuns}, py ${pyRuns})`);
  });

  test('a Python worker killed mid-task (acks_late): a TS worker recovers its unacked entry and runs it', async () => {
    const q = 'mixed.py-crash';
    const app = makeApp({ brokerTransportOptions: { visibilityTimeout: 1 } });
    app.task('celery_peer.sleepy', function (this: TaskContext, seconds: number, value: string) {
      return { value: `ts:${value}`, redelivered: this.request.deliveryInfo.redelivered, seconds };
    });
    // solo pool: the task runs in the process we kill, so nothing survives to finish it
    const py = await startPy([q], 'py-crash@%h', ['-P', 'solo'], { CELERY_PEER_ACKS_LATE: '1' });
    const res = await app.sendTask('celery_peer.sleepy', [30, 'lost'], {}, { queue: q });
    await py.proc.waitFor(`celery_peer.sleepy[${res.id}] received`, 10_000);
    const c = redis.client(0);
    await until(async () => (await c.hlen('unacked')) === 1, 'the Python reservation in unacked', 5000);
    py.proc.kill('SIGKILL');
    await py.proc.exited;
    assert.equal(await res.state(), 'PENDING');
    await sleep(1200); // past the TS app's 1 s visibility timeout
    await startWorker(app, q);
    assert.deepEqual(await res.get({ timeout: 10_000 }), { value: 'ts:lost', redelivered: true, seconds: 30 });
    await until(async () => (await c.hlen('unacked')) === 0 && (await c.zcard('unacked_index')) === 0,
      'the recovered entry to be gone', 5000);
  });

  test('a TS worker killed mid-task: a Python worker\'s visibility sweep puts its message back, redelivered', async () => {
    const q = 'mixed.ts-crash';
    const ts = celeriac(['-A', './test/apps/basic/celery.ts', '-l', 'info', 'worker', '-Q', q, '-n', 'ts-crash@%h', '-c', '1'], {
      CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1),
    });
    open.push(ts);
    await ts.waitFor('ready.', 20_000);
    const app = makeApp();
    const res = await app.sendTask('basic.sleepy', [30, 'crashed'], {}, { queue: q });
    await ts.waitFor(`basic.sleepy[${res.id}] received`, 10_000);
    const c = redis.client(0);
    await until(async () => (await c.hlen('unacked')) === 1, 'the TS reservation in unacked', 5000);
    const [tag] = await c.hkeys('unacked');
    ts.kill('SIGKILL');
    await ts.exited;
    await sleep(1200);
    // the Python worker consumes another queue: only its startup sweep (visibility_timeout=1) touches ours
    await startPy(['mixed.elsewhere'], 'py-sweep@%h', [], { CELERY_PEER_VISIBILITY: '1' });
    await until(async () => (await c.llen(q)) === 1, 'the message back on its queue', 10_000);
    assert.equal(await c.hexists('unacked', tag), 0);
    const env = JSON.parse((await c.lindex(q, 0))!);
    assert.equal(env.headers.id, res.id);
    assert.equal(env.properties.delivery_tag, tag);
    assert.equal(env.properties.delivery_info.redelivered, true);
    // and a TS worker runs the restored message
    app.task('basic.sleepy', function (this: TaskContext, _s: number, tagText: string) {
      return { tag: tagText, redelivered: this.request.deliveryInfo.redelivered };
    });
    await startWorker(app, q);
    assert.deepEqual(await res.get({ timeout: 10_000 }), { tag: 'crashed', redelivered: true });
  });

  test('a TS worker that stops while an ETA task waits leaves it for a Python worker on the same queue', async () => {
    // A Python worker's warm shutdown puts held ETA messages back on their queue for the next worker, whatever its
    // language (docs/wire-format.md §5.4, §6). A TS worker in a mixed fleet must not leave them where only TS workers look.
    const q = 'mixed.eta-handoff';
    const app = makeApp();
    app.task('celery_peer.add', (a: number, b: number) => a + b);
    const lines: string[] = [];
    const w = await startWorker(app, q, { logger: quietLogger(lines) });
    // 6 s ahead: the TS worker has that long to receive it and stop before it is due, even on a loaded machine
    const res = await app.sendTask<number>('celery_peer.add', [20, 22], {}, { queue: q, countdown: 6 });
    // a far ETA is parked ("scheduled for …"), a near one held ("received")
    await until(() => lines.some((l) => l.includes(`[${res.id}] received`) || l.includes(`[${res.id}] scheduled for`)),
      'the TS worker to receive it', 5000);
    await sleep(300);
    await w.stop();
    const py = await startPy([q], 'py-eta@%h');
    const value = await res.get({ timeout: 20_000 }).catch(async (err: Error) => {
      const c = redis.client(0);
      const where = {
        queue: await c.llen(q),
        unacked: await c.hlen('unacked'),
        // celeriac's own parking zset, which no Python worker reads
        parked: (await c.zrangebyscore('celeriac.eta', '-inf', '+inf')).filter((m) => m.includes(res.id)).length,
      };
      throw new Error(`${err.message}; the message is now at ${JSON.stringify(where)}`);
    });
    assert.equal(value, 42);
    await until(() => py.out.includes(`Task celery_peer.add[${res.id}] succeeded`), `the Python worker to log it; its output:\n${py.out}\nTS:\n${lines.join('\n')}`, 5000);
  });
});
