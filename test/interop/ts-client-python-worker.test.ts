// celeriac client (sendTask / AsyncResult) → a real Python Celery 5.2.6 worker (celery_peer.py worker), over a real
// redis-server. One Python worker serves the file's main queue; tests that need messages to wait start their own.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, TaskError, TaskRevokedError } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { naiveUtcMs, peerSend, PyWorker, until } from '../helpers/python.ts';

const PYQ = 'py.main';
const SEP = '\x06\x16';

let redis: RedisServer;
let app: Celeriac;
let py: PyWorker;
const extraWorkers: PyWorker[] = [];

before(async () => {
  redis = await startRedis();
  py = await PyWorker.start(redis, [PYQ], 'py1@%h');
  app = new Celeriac('interop', { broker: redis.url(0), backend: redis.url(1) });
});
after(async () => {
  await app?.close();
  await py?.stop();
  await redis.dispose();
});
afterEach(async () => {
  for (const w of extraWorkers.splice(0)) await w.stop();
});

describe('TS client → Python worker', () => {
  test('sendTask(celery_peer.add) with an explicit id: get() returns 5 and Python wrote a Celery record', async () => {
    const res = await app.sendTask<number>('celery_peer.add', [2, 3], {}, { queue: PYQ, taskId: 'ts:job/add-1' });
    assert.equal(res.id, 'ts:job/add-1');
    assert.equal(await res.get({ timeout: 10_000 }), 5);
    assert.equal(await res.state(), 'SUCCESS');
    const rec = JSON.parse((await redis.client(1).get('celery-task-meta-ts:job/add-1'))!);
    assert.equal(rec.status, 'SUCCESS');
    assert.equal(rec.result, 5);
    assert.equal(rec.task_id, 'ts:job/add-1');
    // the worker's log line may trail the stored result a little
    await until(() => /Task celery_peer\.add\[ts:job\/add-1\] succeeded/.test(py.out), 'the Python worker to log the id', 5000);
  });

  test('celery_peer.echo: unicode and nested args and kwargs round-trip through Python', async () => {
    const args = [1, 'h\u00e9llo \u2603', { nested: [1, { deep: '\u6F22\u5B57', e: '\u{1F389}' }] }, null, 2.5, true, []];
    const kwargs = { '\u043A\u043B\u044E\u0447': '\u0437\u043D\u0430\u0447\u0435\u043D\u0438\u0435', obj: { a: { b: { c: [] } } }, n: -0.5 };
    const res = await app.sendTask('celery_peer.echo', args, kwargs, { queue: PYQ });
    assert.deepEqual(await res.get({ timeout: 10_000 }), {
      args,
      kwargs,
      nested: { list: [1, 2.5, 'three', null, true], dict: { a: { b: { c: [] } } }, unicode: 'h\u00e9llo \u2603' },
    });
  });

  test('celery_peer.fail: TaskError with excType ValueError, excModule builtins and the message', async () => {
    const res = await app.sendTask('celery_peer.fail', [], { message: 'boom \u2603' }, { queue: PYQ });
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError, `got ${String(e)}`);
      assert.equal(e.excType, 'ValueError');
      assert.equal(e.excModule, 'builtins');
      assert.deepEqual(e.excMessage, ['boom \u2603']);
      assert.equal(e.taskId, res.id);
      assert.match(e.message, /boom \u2603/);
      assert.match(e.remoteTraceback ?? '', /ValueError: boom/);
      return true;
    });
    assert.equal(await res.state(), 'FAILURE');
  });

  test('celery_peer.fail custom=true: TaskError with excType PeerError, excModule celery_peer', async () => {
    const res = await app.sendTask('celery_peer.fail', ['custom boom'], { custom: true }, { queue: PYQ });
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError, `got ${String(e)}`);
      assert.equal(e.excType, 'PeerError');
      assert.equal(e.excModule, 'celery_peer');
      assert.deepEqual(e.excMessage, ['custom boom']);
      return true;
    });
  });

  test('celery_peer.retrying (fail_times=2, countdown=1): Python re-publishes twice, get() returns {retries: 2}', async () => {
    const started = Date.now();
    const res = await app.sendTask('celery_peer.retrying', [], { fail_times: 2, countdown: 1 }, { queue: PYQ });
    assert.deepEqual(await res.get({ timeout: 20_000 }), { retries: 2 });
    assert.ok(Date.now() - started >= 1900, `two 1 s retries took only ${Date.now() - started} ms`);
  });

  test('countdown and eta sent by TS: the Python worker runs them no earlier than the eta', async () => {
    const c = redis.client(0);
    // 5 s ahead: the Python worker has that long to reserve both and the test to see them PENDING, even when loaded
    const sentAt = Date.now();
    const byCountdown = await app.sendTask('celery_peer.add', [1, 1], {}, { queue: PYQ, countdown: 5 });
    const eta = new Date(Date.now() + 5000);
    const byEta = await app.sendTask('celery_peer.add', [2, 2], {}, { queue: PYQ, eta });
    // while held, the Python worker keeps the messages in `unacked` (kombu bookkeeping), i.e. it received them early
    await until(async () => (await c.hlen('unacked')) >= 2, 'both ETA messages reserved by the Python worker', 5000);
    assert.equal(await byCountdown.state(), 'PENDING');
    assert.equal(await byCountdown.get({ timeout: 20_000 }), 2);
    assert.equal(await byEta.get({ timeout: 20_000 }), 4);
    const m1 = (await byCountdown.meta())!;
    const m2 = (await byEta.meta())!;
    assert.ok(naiveUtcMs(m1.date_done!) >= sentAt + 5000, `countdown task done ${naiveUtcMs(m1.date_done!) - sentAt} ms after send`);
    assert.ok(naiveUtcMs(m2.date_done!) >= eta.getTime(), `eta task done ${eta.getTime() - naiveUtcMs(m2.date_done!)} ms early`);
  });

  test('priority and queue: TS puts each message on the kombu band list, and Python serves the bands in order', async () => {
    const q = 'py.prio';
    const c = redis.client(0);
    const sent: Array<[string, number]> = [['p9', 9], ['p0', 0], ['p7', 7], ['p4', 4]];
    const ids: Record<string, string> = {};
    for (const [tag, priority] of sent) {
      ids[tag] = (await app.sendTask('celery_peer.echo', [tag], {}, { queue: q, priority })).id;
    }
    const expectList: Record<string, string> = { p0: q, p4: `${q}${SEP}3`, p7: `${q}${SEP}6`, p9: `${q}${SEP}9` };
    for (const [tag, priority] of sent) {
      const items = await c.lrange(expectList[tag], 0, -1);
      assert.equal(items.length, 1, `one message on ${JSON.stringify(expectList[tag])}`);
      const env = JSON.parse(items[0]);
      assert.equal(env.headers.id, ids[tag]);
      assert.equal(env.properties.priority, priority);
      assert.deepEqual(env.properties.delivery_info, { exchange: '', routing_key: q });
    }
    assert.equal(await c.sismember(`_kombu.binding.${q}`, `${q}${SEP}${SEP}${q}`), 1);
    const w = await PyWorker.start(redis, [q], 'py-prio@%h');
    extraWorkers.push(w);
    for (const [tag] of sent) {
      const r = (await app.AsyncResult(ids[tag]).get({ timeout: 10_000 })) as { args: unknown[] };
      assert.deepEqual(r.args, [tag]);
    }
    await until(() => w.receivedOrder().length >= 4, 'four "received" log lines', 5000);
    assert.deepEqual(w.receivedOrder(), ['p0', 'p4', 'p7', 'p9'].map((t) => ids[t]));
  });

  test('expires already past: the Python worker stores REVOKED "expired", read as TaskRevokedError', async () => {
    const res = await app.sendTask('celery_peer.add', [1, 2], {}, { queue: PYQ, expires: new Date(Date.now() - 1000) });
    await assert.rejects(res.get({ timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof TaskRevokedError, `got ${String(e)}`);
      assert.equal(e.why, 'expired');
      assert.equal(e.taskId, res.id);
      return true;
    });
    assert.equal(await res.state(), 'REVOKED');
    assert.deepEqual(await res.info(), { exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'celery.exceptions' });
    // a tiny relative expiry that runs out while the message waits for a worker behaves the same
    const q = 'py.expires';
    const late = await app.sendTask('celery_peer.add', [1, 2], {}, { queue: q, expires: 0.2 });
    await new Promise((r) => setTimeout(r, 400));
    extraWorkers.push(await PyWorker.start(redis, [q], 'py-exp@%h'));
    await assert.rejects(late.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError && e.why === 'expired');
  });

  test('ignoreResult: the Python worker runs the task and stores nothing', async () => {
    const quiet = await app.sendTask('celery_peer.add', [5, 5], {}, { queue: PYQ, ignoreResult: true });
    const marker = await app.sendTask('celery_peer.add', [6, 6], {}, { queue: PYQ });
    assert.equal(await marker.get({ timeout: 10_000 }), 12);
    await until(() => new RegExp(`Task celery_peer\\.add\\[${quiet.id}\\] succeeded`).test(py.out), 'the ignored task to run', 5000);
    assert.equal(await redis.client(1).exists(`celery-task-meta-${quiet.id}`), 0);
  });
});

describe('shared results: TS reads what the Python worker stored', () => {
  test('app.AsyncResult(id) reads a SUCCESS and a FAILURE sent by a Python client and stored by the Python worker', async () => {
    const [ok, bad] = await Promise.all([
      peerSend(redis, 'add', [20, 22], { queue: PYQ }),
      peerSend(redis, 'fail', ['py side'], { queue: PYQ }),
    ]);
    assert.equal(ok.state, 'SUCCESS', JSON.stringify(ok));
    const r = app.AsyncResult<number>(ok.task_id);
    assert.equal(await r.get({ timeout: 5000 }), 42);
    assert.equal(await r.state(), 'SUCCESS');
    const meta = (await r.meta())!;
    assert.equal(meta.task_id, ok.task_id);
    assert.deepEqual(meta.children, []);
    assert.equal(meta.date_done, ok.date_done);
    const f = app.AsyncResult(bad.task_id);
    await assert.rejects(f.get({ timeout: 5000 }), (e: unknown) => e instanceof TaskError && e.excType === 'ValueError' &&
      e.excModule === 'builtins' && e.excMessage[0] === 'py side');
    assert.equal(await f.failed(), true);
  });
});
