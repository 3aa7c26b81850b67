// The result-backend contract (src/backend/backend.ts): every promise is one test, run against memory://, sqlite://
// and redis://.
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CeleriacError, TimeoutError } from '../../src/common/errors.ts';
import { makeResultMeta, type ResultMeta, type TaskState } from '../../src/protocol/index.ts';
import type { ChordPart } from '../../src/backend/backend.ts';
import { KINDS, Subject, sleep } from './subjects.ts';

type Case = { name: string; run: (s: Subject, t: TestContext) => Promise<void> };
const cases: Case[] = [];
const contract = (name: string, run: Case['run']) => cases.push({ name, run });

const meta = (taskId: string, status: TaskState, result: unknown = null): ResultMeta =>
  makeResultMeta({ taskId, status, result, now: new Date('2026-01-02T03:04:05.678Z') });
const rec = (taskId: string, status: TaskState, result: unknown = null) => ({ taskId, meta: meta(taskId, status, result) });
const part = (groupId: string, index: number | null, taskId: string, result: unknown): ChordPart =>
  ({ groupId, index, taskId, state: 'SUCCESS', result });

contract('store() then get() and getMany() read the Celery record back', async (s) => {
  const b = await s.backend();
  const exc = { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' };
  await b.store([rec('t1', 'SUCCESS', 11), rec('t2', 'FAILURE', exc)]);
  assert.deepEqual(await b.get('t1'), meta('t1', 'SUCCESS', 11));
  assert.equal((await b.get('t2'))?.status, 'FAILURE');
  assert.equal(await b.get('missing'), null);
  const many = await b.getMany(['t1', 'missing', 't2']);
  assert.deepEqual(many.map((m) => m?.status ?? null), ['SUCCESS', null, 'FAILURE']);
  assert.deepEqual(await b.getMany([]), []);
  assert.equal((await (await s.otherBackend()).get('t1'))?.result, 11, 'readable through another connection');
});

contract('a stored SUCCESS is never overwritten; other states are', async (s) => {
  const b = await s.backend();
  await b.store([rec('t', 'STARTED')]);
  await b.store([rec('t', 'RETRY', { exc_type: 'E', exc_message: [] })]);
  assert.equal((await b.get('t'))?.status, 'RETRY');
  await b.store([rec('t', 'SUCCESS', 1)]);
  await b.store([rec('t', 'FAILURE', { exc_type: 'E', exc_message: [] })]);
  await (await s.otherBackend()).store([rec('t', 'SUCCESS', 2), rec('u', 'SUCCESS', 3)]);
  assert.deepEqual(await b.get('t'), meta('t', 'SUCCESS', 1));
  assert.equal((await b.get('u'))?.result, 3, 'the rest of the batch is stored');
});

contract('wait() resolves within milliseconds when another connection stores a ready record', async (s, t) => {
  const waiter = await s.backend();
  const writer = await s.otherBackend();
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const id = `w${i}`;
    const waiting = waiter.wait(id, 5000).then((m) => ({ m, at: performance.now() }));
    await sleep(60);
    const sentAt = performance.now();
    await writer.store([rec(id, 'SUCCESS', i)]);
    const { m, at } = await waiting;
    assert.equal(m.result, i);
    latencies.push(at - sentAt);
  }
  const worst = Math.max(...latencies);
  t.diagnostic(`${s.kind}: store -> wait() wake-up ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
  // milliseconds are expected (see the diagnostic); the bound is generous so that a loaded machine does not fail it,
  // and still well below the 5 s a waiter that is never woken would wait
  assert.ok(worst < 1000, `woke after ${worst.toFixed(1)} ms`);
});

contract('wait() returns a record stored before the call at once', async (s, t) => {
  const b = await s.backend();
  await b.store([rec('done', 'FAILURE', { exc_type: 'E', exc_message: ['no'] })]);
  const t0 = Date.now();
  assert.equal((await b.wait('done', 10_000)).status, 'FAILURE');
  const took = Date.now() - t0;
  t.diagnostic(`${s.kind}: wait() on a stored record returned after ${took} ms`);
  assert.ok(took < 2000, `took ${took} ms (a wait that missed the stored record would take the whole 10 s)`);
});

contract('wait() ignores states that are not ready and resolves on the ready one', async (s) => {
  const b = await s.backend();
  const other = await s.otherBackend();
  let settled = false;
  const waiting = b.wait('t', 5000).finally(() => (settled = true));
  await sleep(50);
  await other.store([rec('t', 'STARTED')]);
  await other.store([rec('t', 'PROGRESS', { done: 1 })]);
  await sleep(150);
  assert.equal(settled, false);
  await other.store([rec('t', 'REVOKED', { exc_type: 'TaskRevokedError', exc_message: [] })]);
  assert.equal((await waiting).status, 'REVOKED');
});

contract('wait() rejects with a TimeoutError when nothing ready arrives in time', async (s, t) => {
  const b = await s.backend();
  const t0 = Date.now();
  await assert.rejects(b.wait('never', 300), (e: unknown) => e instanceof TimeoutError && e.code === 'E_TIMEOUT');
  const took = Date.now() - t0;
  t.diagnostic(`${s.kind}: wait(300 ms) timed out after ${took} ms`);
  assert.ok(took >= 250, `timed out early, after ${took} ms`);
  assert.ok(took < 3000, `took ${took} ms (10× the timeout)`);
  await b.store([rec('never', 'SUCCESS', 1)]);
  assert.equal((await b.wait('never', 10_000)).result, 1, 'a later wait still works');
});

contract('several waiters on one id and on different ids are each resolved', async (s) => {
  const b = await s.backend();
  const w = [b.wait('a', 5000), b.wait('a', 5000), b.wait('b', 5000)];
  await sleep(50);
  await (await s.otherBackend()).store([rec('b', 'SUCCESS', 'B'), rec('a', 'SUCCESS', 'A')]);
  assert.deepEqual((await Promise.all(w)).map((m) => m.result), ['A', 'A', 'B']);
});

contract('records expire after resultExpires seconds', async (s) => {
  // 2 s: the read just after the write has that long, even on a loaded machine
  const b = await s.backend({ resultExpires: 2 });
  await b.store([rec('short', 'SUCCESS', 1)]);
  assert.equal((await b.get('short'))?.result, 1);
  await sleep(2500);
  assert.equal(await b.get('short'), null);
  assert.deepEqual(await b.getMany(['short']), [null]);
  await b.store([rec('short', 'SUCCESS', 2)]);
  assert.equal((await b.get('short'))?.result, 2, 'an expired SUCCESS no longer blocks a write');
});

contract('resultExpires null keeps records', async (s) => {
  const b = await s.backend({ resultExpires: null });
  await b.store([rec('kept', 'SUCCESS', 1)]);
  await sleep(1100);
  assert.equal((await b.get('kept'))?.result, 1);
});

contract('forget() deletes a record', async (s) => {
  const b = await s.backend();
  await b.store([rec('f', 'SUCCESS', 1)]);
  await b.forget('f');
  assert.equal(await b.get('f'), null);
  await b.forget('f');
});

contract('saveGroup() keeps a group tuple that restoreGroup() reads back from any connection; deleteGroup() drops it', async (s) => {
  const b = await s.backend();
  const tuple = [['g1', null], [[['a', null], null], [['g2', null], [[['b', null], null]]]]];
  assert.equal(await b.restoreGroup('g1'), null);
  await b.saveGroup('g1', tuple);
  assert.deepEqual(await b.restoreGroup('g1'), tuple);
  assert.deepEqual(await (await s.otherBackend()).restoreGroup('g1'), tuple, 'readable through another connection');
  await b.saveGroup('g1', [['g1', null], []]);
  assert.deepEqual(await b.restoreGroup('g1'), [['g1', null], []], 'saving again replaces it');
  await b.deleteGroup('g1');
  assert.equal(await b.restoreGroup('g1'), null);
});

const closedCode = (e: unknown) => e instanceof CeleriacError && e.code === 'E_CLOSED' && /closed/.test(e.message);

contract('close() rejects pending waits with E_CLOSED; every later call rejects with E_CLOSED', async (s) => {
  const b = await s.backend();
  const rejected = assert.rejects(b.wait('x', 10_000), closedCode);
  await sleep(50);
  await b.close();
  await rejected;
  await assert.rejects(b.wait('x', 1000), closedCode);
  await assert.rejects(b.get('x'), closedCode);
  await assert.rejects(b.store([rec('x', 'SUCCESS', 1)]), closedCode);
  await assert.rejects(b.chordPartDone(part('g', 0, 'x', 1)), closedCode);
});

contract('chord counter: the last of n parts, and only it, gets every result in header order', async (s) => {
  const a = await s.backend();
  const b = await s.otherBackend();
  await a.setChordSize('g', 4);
  const outcomes = await Promise.all([
    a.chordPartDone(part('g', 2, 't2', 20)),
    b.chordPartDone(part('g', 0, 't0', 0)),
    a.chordPartDone(part('g', 3, 't3', { x: 30 })),
    b.chordPartDone(part('g', 1, 't1', [10])),
  ]);
  const completers = outcomes.filter((o) => o !== null);
  assert.equal(completers.length, 1);
  assert.deepEqual(completers[0],
    [['t0', 'SUCCESS', 0], ['t1', 'SUCCESS', [10]], ['t2', 'SUCCESS', 20], ['t3', 'SUCCESS', { x: 30 }]]);
  await a.chordCleanup('g');
});

contract('chord counter: a part stored twice (a redelivery) counts once; a completed, uncleaned chord completes again', async (s) => {
  const b = await s.backend();
  await b.setChordSize('g2', 2);
  assert.equal(await b.chordPartDone(part('g2', 0, 'p0', 'a')), null);
  assert.equal(await b.chordPartDone(part('g2', 0, 'p0', 'a')), null, 'duplicate does not complete the chord');
  const all = [['p0', 'SUCCESS', 'a'], ['p1', 'SUCCESS', 'b']];
  assert.deepEqual(await b.chordPartDone(part('g2', 1, 'p1', 'b')), all);
  // the completer may have died before publishing the body: a redelivered last part completes it again
  assert.deepEqual(await b.chordPartDone(part('g2', 1, 'p1', 'b')), all, 'at-least-once for the body');
  await b.chordCleanup('g2');
  assert.equal(await b.chordPartDone(part('g2', 1, 'p1', 'b')), null, 'after cleanup a late duplicate completes nothing');
});

contract('chord part rule: a part stored again with a different value keeps its first value; the body gets that one', async (s) => {
  const b = await s.backend();
  const other = await s.otherBackend();
  await b.setChordSize('g3', 3);
  assert.equal(await b.chordPartDone(part('g3', 0, 'p0', 'first run')), null);
  // a redelivered run of p0 (its first worker died before the ack) that computed something else, from another process
  assert.equal(await other.chordPartDone(part('g3', 0, 'p0', 'second run')), null, 'the second run does not count');
  // a part without a group_index (scored +inf on Redis), stored again with another state and result
  assert.equal(await b.chordPartDone({ ...part('g3', null, 'pn', 'first n'), state: 'SUCCESS' }), null);
  const exc = { exc_type: 'ValueError', exc_message: ['second n'], exc_module: 'builtins' };
  assert.equal(await other.chordPartDone({ ...part('g3', null, 'pn', exc), state: 'FAILURE' }), null,
    'the second run of a part without an index does not count either');
  const kept = [['p0', 'SUCCESS', 'first run'], ['p1', 'SUCCESS', 'b'], ['pn', 'SUCCESS', 'first n']];
  assert.deepEqual(await other.chordPartDone(part('g3', 1, 'p1', 'b')), kept, 'the body receives the first values');
  assert.deepEqual(await b.chordPartDone(part('g3', 0, 'p0', 'third run')), kept,
    'a late third run completes the uncleaned chord again with the same values (the body is published alike)');
  await b.chordCleanup('g3');
});

for (const kind of KINDS) {
  describe(`result backend contract: ${kind}`, () => {
    const s = new Subject(kind);
    before(() => s.setup());
    after(() => s.teardown());
    afterEach(() => s.reset());
    for (const c of cases) test(c.name, (t) => c.run(s, t));
  });
}
