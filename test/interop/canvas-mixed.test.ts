// Canvas across both languages: chains, callbacks, errbacks and chords whose links run partly on a celeriac Worker
// (queue TSQ) and partly on a real Python Celery worker (queue PYQ). The Python CLI cannot send a canvas, so the
// messages are built here exactly as a Python client would (embed.chain / callbacks / errbacks / chord, docs/wire-format.md §8).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Celeriac, TaskError, Worker, type TaskContext } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { peerResult, pyClient, PyWorker, until } from '../helpers/python.ts';

const PYQ = 'canvas.py';
const TSQ = 'canvas.ts';

let redis: RedisServer;
let app: Celeriac;
let worker: Worker;
let py: PyWorker;
const seen: Array<{ task: string; args: unknown[]; id: string; parentId: string | null; rootId: string | null }> = [];

interface Sig {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: null;
  immutable: boolean;
}

/** A signature as Celery serializes it, routed to `queue`, with a pre-assigned task id. */
function sig(task: string, args: unknown[], queue: string, options: Record<string, unknown> = {}, immutable = false): Sig & { id: string } {
  const id = (options.task_id as string | undefined) ?? randomUUID();
  return { task, args, kwargs: {}, options: { task_id: id, queue, ...options }, subtask_type: null, immutable, id };
}

function plain(s: Sig & { id?: string }): Sig {
  const { id: _id, ...rest } = s;
  return rest;
}

/** Publish the first task of a canvas with the given embed, as Celery's apply_async would. */
async function publish(name: string, args: unknown[], queue: string, embed: Record<string, unknown>,
  options: Parameters<Celeriac['prepareMessage']>[3] = {}): Promise<string> {
  const msg = app.prepareMessage(name, args, {}, { queue, ...options }, {}, embed);
  await (await app.broker()).publish([msg]);
  return msg.id;
}

before(async () => {
  redis = await startRedis();
  app = new Celeriac('interop', { broker: redis.url(0), backend: redis.url(1) });
  const record = function (this: TaskContext, ...args: unknown[]) {
    seen.push({ task: this.name, args, id: this.request.id, parentId: this.request.parentId, rootId: this.request.rootId });
  };
  app.task('ts.double', function (this: TaskContext, n: number) {
    record.call(this, n);
    return n * 2;
  });
  app.task('ts.collect', function (this: TaskContext, parts: unknown[]) {
    record.call(this, parts);
    return { parts };
  });
  app.task('ts.boom', function (this: TaskContext, msg: string) {
    record.call(this, msg);
    throw new TypeError(msg);
  });
  app.task('ts.onerror', function (this: TaskContext, failedId: string) {
    record.call(this, failedId);
    return { failed: failedId };
  });
  const [w, p] = await Promise.all([
    (async () => {
      const tw = new Worker(app, { logger: quietLogger(), queues: [TSQ] });
      await tw.start();
      return tw;
    })(),
    PyWorker.start(redis, [PYQ], 'py-canvas@%h'),
  ]);
  worker = w;
  py = p;
});
after(async () => {
  await worker?.stop();
  await app?.close();
  await py?.stop();
  await redis.dispose();
});

describe('chains across languages', () => {
  test('TS link → Python link: ts.double(4) | celery_peer.add(10) gives 18', async () => {
    const add = sig('celery_peer.add', [10], PYQ);
    const first = await publish('ts.double', [4], TSQ, { chain: [plain(add)] });
    assert.equal(await app.AsyncResult(add.id).get({ timeout: 10_000 }), 18);
    const m0 = (await app.AsyncResult(first).meta())!;
    assert.equal(m0.result, 8);
    assert.deepEqual(m0.children, [[[add.id, null], null]]);
    // the Python worker ran a message the TS worker published: parent = the TS link
    assert.equal((await app.AsyncResult(add.id).meta())!.parent_id, first);
  });

  test('TS → Python → TS: ts.double(4) | celery_peer.add(10) | ts.double() gives 36, ids carried along', async () => {
    const add = sig('celery_peer.add', [10], PYQ);
    const last = sig('ts.double', [], TSQ);
    // embed.chain is reversed: the next link is the last element
    const first = await publish('ts.double', [4], TSQ, { chain: [plain(last), plain(add)] });
    assert.equal(await app.AsyncResult(last.id).get({ timeout: 10_000 }), 36);
    const ran = seen.find((s) => s.id === last.id)!;
    assert.deepEqual(ran.args, [18]);
    assert.equal(ran.parentId, add.id, 'Python set parent_id to its own id');
    assert.equal(ran.rootId, first, 'Python carried root_id forward');
    assert.equal((await app.AsyncResult(last.id).meta())!.parent_id, add.id);
    const pyMeta = (await app.AsyncResult(add.id).meta())!;
    assert.deepEqual(pyMeta.children, [[[last.id, null], null]]);
  });

  test('link callback TS → Python and Python → TS', async () => {
    const mul = sig('celery_peer.mul', [10], PYQ);
    const tsFirst = await publish('ts.double', [3], TSQ, { callbacks: [plain(mul)] });
    assert.equal(await app.AsyncResult(mul.id).get({ timeout: 10_000 }), 60);
    assert.equal((await app.AsyncResult(mul.id).meta())!.parent_id, tsFirst);

    const dbl = sig('ts.double', [], TSQ);
    const pyFirst = await publish('celery_peer.add', [1, 2], PYQ, { callbacks: [plain(dbl)] });
    assert.equal(await app.AsyncResult(dbl.id).get({ timeout: 10_000 }), 6);
    const ran = seen.find((s) => s.id === dbl.id)!;
    assert.equal(ran.parentId, pyFirst);
  });

  test('errbacks: a failing TS task publishes a Python errback; a failing Python task publishes a TS errback', async () => {
    const pyErrback = sig('celery_peer.errback', [], PYQ);
    const tsFailed = await publish('ts.boom', ['ts side'], TSQ, { errbacks: [plain(pyErrback)] });
    assert.deepEqual(await app.AsyncResult(pyErrback.id).get({ timeout: 10_000 }), { failed_task_id: tsFailed });
    await assert.rejects(app.AsyncResult(tsFailed).get({ timeout: 5000 }), (e: unknown) => e instanceof TaskError && e.excType === 'TypeError');

    // Python publishes an errback it does not know (or one with a single parameter) with args [failed id]
    const tsErrback = sig('ts.onerror', [], TSQ);
    const pyFailed = await publish('celery_peer.fail', ['py side'], PYQ, { errbacks: [plain(tsErrback)] });
    assert.deepEqual(await app.AsyncResult(tsErrback.id).get({ timeout: 10_000 }), { failed: pyFailed });
    assert.equal(seen.find((s) => s.id === tsErrback.id)!.parentId, pyFailed);
  });

  test('a failing TS link fails the pending Python links too, readable by a Python client', async () => {
    const add = sig('celery_peer.add', [1], PYQ);
    const first = await publish('ts.boom', ['chain broke'], TSQ, { chain: [plain(add)] });
    await assert.rejects(app.AsyncResult(first).get({ timeout: 5000 }), TaskError);
    const r = await peerResult(redis, add.id, 5);
    assert.equal(r.state, 'FAILURE', JSON.stringify(r));
    assert.deepEqual(r.result, { exc_type: 'TypeError', exc_message: ['chain broke'], exc_module: 'builtins' });
  });
});

describe('chords across languages', () => {
  async function chordKeys(gid: string): Promise<number> {
    const c = redis.client(1);
    return c.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`);
  }

  test('header on the TS worker, body celery_peer.xsum on the Python worker', async () => {
    const gid = randomUUID();
    const body = sig('celery_peer.xsum', [], PYQ);
    const backend = await app.backend();
    await backend.setChordSize(gid, 3);
    const parts: string[] = [];
    for (const [i, n] of [1, 2, 3].entries()) {
      parts.push(await publish('ts.double', [n], TSQ, { chord: plain(body) }, { group: gid, groupIndex: i }));
    }
    assert.equal(await app.AsyncResult(body.id).get({ timeout: 10_000 }), 12);
    for (const id of parts) assert.equal((await app.AsyncResult(id).meta())!.group_id, gid);
    assert.equal(await chordKeys(gid), 0, 'the completing TS worker removed .j and .s');
  });

  test('header on the Python worker, body on the TS worker (Python completes the join)', async () => {
    const gid = randomUUID();
    const body = sig('ts.collect', [], TSQ);
    await (await app.backend()).setChordSize(gid, 3);
    // published in reverse so that the results must be ordered by group_index, not by arrival
    for (const [i, [a, b]] of [...[[1, 1], [2, 2], [3, 3]].entries()].reverse()) {
      await publish('celery_peer.add', [a, b], PYQ, { chord: plain(body) }, { group: gid, groupIndex: i });
    }
    assert.deepEqual(await app.AsyncResult(body.id).get({ timeout: 10_000 }), { parts: [2, 4, 6] });
    await until(async () => (await chordKeys(gid)) === 0, 'Python to remove the chord keys', 5000);
  });

  for (const completer of ['TS', 'Python'] as const) {
    test(`one header split across both workers, the ${completer} worker completes the join`, async () => {
      const gid = randomUUID();
      const body = sig('celery_peer.echo', [], PYQ);
      await (await app.backend()).setChordSize(gid, 4);
      const tsParts = [[0, 'ts.double', [1]], [2, 'ts.double', [5]]] as const;
      const pyParts = [[1, 'celery_peer.add', [10, 20]], [3, 'celery_peer.mul', [3, 4]]] as const;
      const [early, late] = completer === 'TS' ? [pyParts, tsParts] : [tsParts, pyParts];
      const earlyIds: string[] = [];
      for (const [i, name, args] of early) {
        earlyIds.push(await publish(name, [...args], name.startsWith('ts.') ? TSQ : PYQ, { chord: plain(body) },
          { group: gid, groupIndex: i }));
      }
      for (const id of earlyIds) await app.AsyncResult(id).get({ timeout: 10_000 });
      const c = redis.client(1);
      assert.equal(await c.zcard(`celery-taskset-meta-${gid}.j`), 2, 'the first two parts joined');
      for (const [i, name, args] of late) {
        await publish(name, [...args], name.startsWith('ts.') ? TSQ : PYQ, { chord: plain(body) }, { group: gid, groupIndex: i });
      }
      const r = (await app.AsyncResult(body.id).get({ timeout: 10_000 })) as { args: unknown[] };
      assert.deepEqual(r.args, [[2, 30, 10, 12]]);
      await until(async () => (await chordKeys(gid)) === 0, 'the chord keys to be removed', 5000);
    });
  }

  test('a failed Python part: the TS worker completes the join with ChordError on the body, as Python would', async () => {
    const gid = randomUUID();
    const body = sig('celery_peer.xsum', [], PYQ);
    await (await app.backend()).setChordSize(gid, 2);
    const pyPart = await publish('celery_peer.fail', ['part failed'], PYQ, { chord: plain(body) }, { group: gid, groupIndex: 0 });
    await assert.rejects(app.AsyncResult(pyPart).get({ timeout: 10_000 }), TaskError);
    await publish('ts.double', [1], TSQ, { chord: plain(body) }, { group: gid, groupIndex: 1 });
    await assert.rejects(app.AsyncResult(body.id).get({ timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError, `got ${String(e)}`);
      assert.equal(e.excType, 'ChordError');
      assert.equal(e.excModule, 'celery.exceptions');
      assert.deepEqual(e.excMessage, [`Dependency ${pyPart} raised ValueError('part failed')`]);
      return true;
    });
    const r = await peerResult(redis, body.id);
    assert.equal(r.state, 'FAILURE');
    assert.equal(r.result.exc_type, 'ChordError');
    assert.equal(r.result.exc_module, 'celery.exceptions');
  });

  // Python counts an expired (REVOKED) header part in the join (backend.mark_as_revoked → on_chord_part_return), so
  // the chord ends with ChordError instead of waiting for ever. The Python half is the reference for the TS half.
  for (const side of ['Python', 'TS'] as const) {
    test(`an expired header part on the ${side} worker still completes the join, with ChordError on the body`, async () => {
      const gid = randomUUID();
      const body = sig('celery_peer.xsum', [], PYQ);
      await (await app.backend()).setChordSize(gid, 2);
      const [name, q] = side === 'Python' ? ['celery_peer.add', PYQ] : ['ts.double', TSQ];
      const args = side === 'Python' ? [1, 1] : [1];
      const expired = await publish(name, args, q, { chord: plain(body) },
        { group: gid, groupIndex: 0, expires: new Date(Date.now() - 1000) });
      await publish(name, args, q, { chord: plain(body) }, { group: gid, groupIndex: 1 });
      await until(async () => (await app.AsyncResult(expired).state()) === 'REVOKED', 'the expired part to be REVOKED', 5000);
      await assert.rejects(app.AsyncResult(body.id).get({ timeout: 5000 }), (e: unknown) => {
        assert.ok(e instanceof TaskError, `${side}: got ${String(e)}`);
        assert.equal(e.excType, 'ChordError');
        assert.deepEqual(e.excMessage, [`Dependency ${expired} raised TaskRevokedError('expired')`]);
        return true;
      });
    });
  }

  test('a failed TS part: the Python worker completes the join with ChordError on the body', async () => {
    const gid = randomUUID();
    const body = sig('ts.collect', [], TSQ);
    await (await app.backend()).setChordSize(gid, 2);
    const tsPart = await publish('ts.boom', ['ts part failed'], TSQ, { chord: plain(body) }, { group: gid, groupIndex: 0 });
    await assert.rejects(app.AsyncResult(tsPart).get({ timeout: 10_000 }), TaskError);
    await publish('celery_peer.add', [1, 1], PYQ, { chord: plain(body) }, { group: gid, groupIndex: 1 });
    await assert.rejects(app.AsyncResult(body.id).get({ timeout: 10_000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError, `got ${String(e)}`);
      assert.equal(e.excType, 'ChordError');
      assert.deepEqual(e.excMessage, [`Dependency ${tsPart} raised TypeError('ts part failed')`]);
      return true;
    });
    assert.equal(seen.some((s) => s.id === body.id), false, 'the body never ran');
  });
});

describe('canvas applied by a real Python client (celery.chain/chord/group)', () => {
  const TS = (name: string, args: unknown[] = []) => `signature(${JSON.stringify(name)}, args=${JSON.stringify(args)}, queue=${JSON.stringify(TSQ)})`;

  test('chain(add | ts.double | mul): Python and TS links alternate, Python get() returns the last value', async () => {
    const out = await pyClient(redis, `
res = chain(add.s(2, 2).set(queue=${JSON.stringify(PYQ)}), ${TS('ts.double')}, mul.s(3).set(queue=${JSON.stringify(PYQ)})).apply_async()
print(json.dumps({"id": res.id, "parent": res.parent.id, "value": res.get(timeout=10)}))
`);
    assert.equal(out.value, 24);
    const ran = seen.find((s) => s.id === out.parent)!;
    assert.ok(ran, 'the TS link ran');
    assert.deepEqual(ran.args, [4]);
    assert.equal(await app.AsyncResult(out.id).get({ timeout: 5000 }), 24);
  });

  test('chord([ts.double(i)…], xsum): a Python client\'s chord header runs on the TS worker, body on Python', async () => {
    const header = [1, 2, 3].map((i) => TS('ts.double', [i])).join(', ');
    const out = await pyClient(redis, `
res = chord([${header}], xsum.s().set(queue=${JSON.stringify(PYQ)}))()
print(json.dumps({"id": res.id, "value": res.get(timeout=10)}))
`);
    assert.equal(out.value, 12);
  });

  test('chord([add(i, i)…], ts.collect): Python header, TS body', async () => {
    const out = await pyClient(redis, `
res = chord([add.s(i, i).set(queue=${JSON.stringify(PYQ)}) for i in (1, 2, 3)], ${TS('ts.collect')})()
print(json.dumps({"id": res.id, "value": res.get(timeout=10)}))
`);
    assert.deepEqual(out.value, { parts: [2, 4, 6] });
  });

  test('group of TS tasks: a Python GroupResult joins the records the TS worker stored (with group_id)', async () => {
    const members = [0, 1, 2].map((i) => TS('ts.double', [i])).join(', ');
    const out = await pyClient(redis, `
res = group([${members}]).apply_async()
print(json.dumps({"id": res.id, "ids": [r.id for r in res.results], "value": res.get(timeout=10)}))
`);
    assert.deepEqual(out.value, [0, 2, 4]);
    for (const id of out.ids as string[]) assert.equal((await app.AsyncResult(id).meta())!.group_id, out.id);
  });
});
