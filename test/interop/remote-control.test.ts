// Remote control across languages: Python's `inspect`/`revoke` reach a celeriac worker, celeriac's Control reaches a
// Python worker, and worker heartbeats are published as Celery events.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Control, Worker, TaskRevokedError, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { PyWorker, peerJson as peerJsonTyped, pyClient, sleep, until } from '../helpers/python.ts';

// control replies are maps or lists keyed by node name, not task results
const peerJson = (r: RedisServer, argv: string[]): Promise<any> => peerJsonTyped(r, argv);
import { celeriac, exec, lastJsonLine } from '../helpers/processes.ts';

let redis: RedisServer;
const cleanup: Array<() => Promise<void>> = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis.flush();
});

async function tsWorker(name: string, queues = ['celery']) {
  const app = new Celeriac('rc', { broker: redis.url(0), backend: redis.url(1) });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = app.task('rc.slow', async function (this: TaskContext) {
    await Promise.race([gate, new Promise((r) => this.signal.addEventListener('abort', r))]);
    return 'finished';
  });
  const add = app.task('rc.add', (a: number, b: number) => a + b);
  const worker = new Worker(app, { logger: quietLogger(), hostname: name, queues });
  await worker.start();
  cleanup.push(async () => {
    release();
    await worker.stop();
    await app.close();
  });
  return { app, worker, slow, add, release };
}

describe('Python control client → celeriac worker', () => {
  test('inspect ping, registered and active answer like a Python worker', async () => {
    const { slow } = await tsWorker('ts1@test');
    const running = await slow.delay();
    await sleep(300);
    const ping = await peerJson(redis, ['inspect', 'ping', '--timeout', '2']);
    assert.ok(ping.some((r: Record<string, unknown>) => JSON.stringify(r['ts1@test']) === '{"ok":"pong"}'), JSON.stringify(ping));
    const registered = await peerJson(redis, ['inspect', 'registered', '--timeout', '2']);
    assert.deepEqual(registered['ts1@test'], ['rc.add', 'rc.slow']);
    const active = await peerJson(redis, ['inspect', 'active', '--timeout', '2']);
    assert.equal(active['ts1@test'][0].id, running.id);
    assert.equal(active['ts1@test'][0].name, 'rc.slow');
    const stats = await peerJson(redis, ['inspect', 'stats', '--timeout', '2']);
    assert.equal(stats['ts1@test'].pool['max-concurrency'], 100);
  });

  test('revoke before arrival discards the task; revoke --terminate stops a running one', async () => {
    const { app, slow, add } = await tsWorker('ts2@test');
    const later = await add.applyAsync([1, 2], {}, { countdown: 2, taskId: 'rc-revoke-me' });
    await peerJson(redis, ['revoke', 'rc-revoke-me']);
    await assert.rejects(later.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'revoked');
    const running = await slow.delay();
    await sleep(300);
    await peerJson(redis, ['revoke', running.id, '--terminate']);
    await assert.rejects(running.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'terminated');
    assert.equal(await app.AsyncResult(running.id).state(), 'REVOKED');
  });
});

describe('Python celery control rate_limit / time_limit → celeriac worker', () => {
  test('the worker replies as a Python one and applies the rate: 6 calls at 2/s are spread over 2.5 s', async () => {
    const { add } = await tsWorker('ts3@test');
    const replies = await pyClient(redis, [
      "r = app.control.rate_limit('rc.add', '2/s', reply=True, timeout=2)",
      "t = app.control.time_limit('rc.add', soft=5, hard=10, reply=True, timeout=2)",
      "u = app.control.rate_limit('no.such', '1/s', reply=True, timeout=2)",
      'print(json.dumps({"rate": r, "time": t, "unknown": u}))',
    ].join('\n'));
    assert.deepEqual(replies.rate, [{ 'ts3@test': { ok: 'new rate limit set successfully' } }]);
    assert.deepEqual(replies.time, [{ 'ts3@test': { ok: 'time limits set successfully' } }]);
    assert.deepEqual(replies.unknown, [{ 'ts3@test': { error: 'unknown task' } }]);
    const t0 = Date.now();
    const results = await add.applyMany(Array.from({ length: 6 }, (_, i) => [i, 0] as [number, number]));
    await Promise.all(results.map((r) => r.get({ timeout: 20_000 })));
    assert.ok(Date.now() - t0 >= 2400, `6 at 2/s took ${Date.now() - t0} ms`);
  });
});

describe('celeriac control client → Python worker', () => {
  test('ping and registered reach a Python worker; the CLI prints the replies', async () => {
    const py = await PyWorker.start(redis, ['celery'], 'py-rc@test');
    cleanup.push(() => py.stop());
    const app = new Celeriac('rc-client', { broker: redis.url(0), backend: redis.url(1) });
    cleanup.push(() => app.close());
    const control = new Control(app);
    // generous reply windows that end at the first reply (limit, or a destination), so they cost nothing when fast
    assert.deepEqual((await control.ping({ timeout: 10_000, limit: 1 }))['py-rc@test'], { ok: 'pong' });
    const reg = (await control.inspect('registered', { timeout: 10_000, destination: ['py-rc@test'] }))['py-rc@test'] as string[];
    assert.ok(reg.some((n) => n.startsWith('celery_peer.add')));
    const { code, out } = await exec(celeriac(['inspect', 'ping', '-d', 'py-rc@test', '--timeout', '10'],
      { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) }));
    assert.equal(code, 0, out);
    assert.deepEqual(lastJsonLine(out)['py-rc@test'], { ok: 'pong' });
  });

  test('revoke from celeriac discards a task a Python worker holds for its ETA', async () => {
    const py = await PyWorker.start(redis, ['celery'], 'py-rc2@test');
    cleanup.push(() => py.stop());
    const app = new Celeriac('rc-client', { broker: redis.url(0), backend: redis.url(1) });
    cleanup.push(() => app.close());
    // 6 s ahead: the Python worker has that long to receive it and the revoke to reach it before it is due
    const res = await app.sendTask('celery_peer.add', [1, 1], {}, { countdown: 6 });
    await until(() => py.out.includes(`[${res.id}] received`), 'the Python worker to hold it', 10_000);
    await new Control(app).revoke(res.id);
    await assert.rejects(res.get({ timeout: 20_000 }), (e: unknown) => e instanceof TaskRevokedError);
  });
});

test('a celeriac worker publishes worker-online and heartbeats on the celeryev fanout', async () => {
  const sub = redis.client(0);
  const seen: string[] = [];
  await sub.psubscribe('/0.celeryev/worker.*');
  sub.on('pmessage', (_p: string, channel: string) => seen.push(channel));
  await tsWorker('ts-ev@test');
  await until(() => seen.includes('/0.celeryev/worker.heartbeat'), 'a heartbeat', 5000);
  assert.ok(seen.includes('/0.celeryev/worker.online'));
});
