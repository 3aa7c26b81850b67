// Task events from a celeriac worker (`worker -E`, src/worker/events.ts) read by Python Celery's own monitor
// machinery: a Python script builds celery.events.state.State from app.events.Receiver over the same Redis while a
// celeriac worker runs 50 tasks (some succeed, some fail, some retry once and then succeed), and reports what it saw.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { pyClient, until } from '../helpers/python.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});

const HOST = 'ev1@test';
const N = 50;

/** Collects events until every task is SUCCESS/FAILURE and the worker's heartbeat counts them all (or 40 s). */
const MONITOR = `
import threading
from celery.events.state import State
N, HOST = ${N}, '${HOST}'
state = State()
def finished():
    final = [t for t in state.tasks.values() if t.state in ('SUCCESS', 'FAILURE')]
    w = state.workers.get(HOST)
    return len(final) >= N and w is not None and (w.processed or 0) >= N
with app.connection() as conn:
    recv = None
    def on_event(event):
        state.event(event)
        if finished():
            recv.should_stop = True
    recv = app.events.Receiver(conn, handlers={'*': on_event})
    timer = threading.Timer(40, lambda: setattr(recv, 'should_stop', True))
    timer.start()
    recv.capture(limit=None, timeout=None, wakeup=True)
    timer.cancel()
w = state.workers.get(HOST)
print(json.dumps({
    'tasks': {t.uuid: {'state': t.state, 'name': t.name, 'retries': t.retries,
                       'hostname': t.worker.hostname if t.worker else None} for t in state.tasks.values()},
    'worker': None if w is None else {'alive': w.alive, 'processed': w.processed, 'loadavg': w.loadavg,
                                      'freq': w.freq, 'sw_ident': w.sw_ident},
}))
`;

test('Python\'s events.State sees every task of a celeriac -E worker to its final state, and the worker alive', async () => {
  const app = new Celeriac('ev', { broker: redis.url(0), backend: redis.url(1) });
  const add = app.task('ev.add', (a: number, b: number) => a + b);
  const boom = app.task('ev.boom', (why: string) => {
    throw new Error(why);
  });
  const flaky = app.task('ev.flaky', function (this: TaskContext, x: number) {
    if (this.request.retries === 0) throw this.retry({ countdown: 0.3 });
    return x * 2;
  });
  const worker = new Worker(app, { logger: quietLogger(), hostname: HOST, sendTaskEvents: true });
  await worker.start();
  try {
    const probe = redis.client(0);
    const patterns = async () => Number(await probe.call('PUBSUB', 'NUMPAT'));
    const before = await patterns();
    const monitor = pyClient(redis, MONITOR, 55_000);
    // the receiver is a fanout subscriber: tasks are sent once it listens
    await until(async () => (await patterns()) > before, 'the Python receiver to subscribe', 20_000);
    const expected = new Map<string, { state: string; name: string }>();
    for (let i = 0; i < N; i++) {
      const kind = i % 5;
      if (kind < 3) expected.set((await add.delay(i, 1)).id, { state: 'SUCCESS', name: 'ev.add' });
      else if (kind === 3) expected.set((await boom.delay(`boom ${i}`)).id, { state: 'FAILURE', name: 'ev.boom' });
      else expected.set((await flaky.delay(i)).id, { state: 'SUCCESS', name: 'ev.flaky' });
    }
    const seen = await monitor;
    for (const [id, want] of expected) {
      const got = seen.tasks[id];
      assert.ok(got, `task ${id} (${want.name}) not seen: ${JSON.stringify(seen).slice(0, 2000)}`);
      assert.equal(got.state, want.state, `${want.name}[${id}]`);
      assert.equal(got.name, want.name);
      assert.equal(got.hostname, HOST);
      if (want.name === 'ev.flaky') assert.equal(got.retries, 1);
    }
    assert.ok(seen.worker, 'the worker is known');
    assert.equal(seen.worker.alive, true);
    assert.ok(seen.worker.processed >= N, `processed ${seen.worker.processed}`);
    assert.equal(seen.worker.freq, 2);
    assert.equal(seen.worker.sw_ident, 'celeriac');
    assert.equal(seen.worker.loadavg.length, 3);
  } finally {
    await worker.stop();
    await app.close();
  }
});
