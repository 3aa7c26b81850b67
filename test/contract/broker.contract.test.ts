// The broker contract (src/broker/broker.ts): every promise is one test, run against memory://, sqlite:// and redis://.
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CeleriacError } from '../../src/common/errors.ts';
import type { Broker, Delivery, OutgoingMessage } from '../../src/broker/broker.ts';
import { KINDS, Subject, envelope, sleep } from './subjects.ts';

type Case = { name: string; only?: (s: Subject) => string | false; run: (s: Subject, t: TestContext) => Promise<void> };
const cases: Case[] = [];
const contract = (name: string, run: Case['run'], only?: Case['only']) => cases.push({ name, run, only });

const msg = (queue: string, tag: string, priority = 0, dueAt?: number): OutgoingMessage =>
  ({ queue, priority, raw: envelope(queue, tag, priority), dueAt });
// messages are named by their task id: a message put back gets a fresh delivery tag (a stale holder cannot ack it)
const tags = (ds: Delivery[]) => ds.map((d) => JSON.parse(d.raw).headers.id as string);
const envOf = (d: Delivery) => JSON.parse(d.raw);

async function reserveAll(b: Broker, queues: string[]): Promise<Delivery[]> {
  const r = await b.reserve(queues, 1000, 0);
  return r.deliveries;
}

contract('FIFO within a priority, across publish calls', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q', 'a1'), msg('q', 'a2'), msg('q', 'a3')]);
  await b.publish([msg('q', 'a4')]);
  await b.publish([msg('q', 'a5')]);
  assert.deepEqual(tags(await reserveAll(b, ['q'])), ['a1', 'a2', 'a3', 'a4', 'a5']);
});

contract('lower priority numbers first, by kombu band (0-2, 3-5, 6-8, 9), FIFO within a band', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q', 'p9', 9), msg('q', 'p0', 0), msg('q', 'p6', 6), msg('q', 'p3', 3)]);
  await b.publish([msg('q', 'p2', 2), msg('q', 'p0b', 0), msg('q', 'p5', 5)]);
  assert.deepEqual(tags(await reserveAll(b, ['q'])), ['p0', 'p2', 'p0b', 'p3', 'p5', 'p6', 'p9']);
});

contract('across queues: band-major, in the order the caller gives the queues', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q1', 'a6', 6), msg('q1', 'a0', 0), msg('q2', 'b0', 0), msg('q2', 'b3', 3), msg('q2', 'b0b', 0)]);
  const r = await b.reserve(['q2', 'q1'], 10, 0);
  assert.deepEqual(tags(r.deliveries), ['b0', 'b0b', 'a0', 'b3', 'a6']);
  assert.deepEqual(r.deliveries.map((d) => d.queue), ['q2', 'q2', 'q1', 'q2', 'q1']);
  assert.equal(r.deliveries[0].raw, envelope('q2', 'b0', 0), 'the raw envelope comes back unchanged');
});

contract('reserve takes at most `max` and returns at once with what is ready', async (s) => {
  const b = await s.broker();
  await b.publish(['m1', 'm2', 'm3', 'm4', 'm5'].map((t) => msg('q', t)));
  assert.deepEqual(tags((await b.reserve(['q'], 2, 5000)).deliveries), ['m1', 'm2']);
  assert.deepEqual(tags((await b.reserve(['q'], 10, 5000)).deliveries), ['m3', 'm4', 'm5']);
  assert.deepEqual(await b.reserve(['q'], 10, 0), { deliveries: [], rejected: [] });
});

contract('reserve returns nothing within about waitMs when nothing is ready (earlier is allowed)', async (s, t) => {
  const b = await s.broker();
  const t0 = Date.now();
  const r = await b.reserve(['q'], 5, 300);
  const waited = Date.now() - t0;
  assert.deepEqual(r, { deliveries: [], rejected: [] });
  t.diagnostic(`${s.kind}: reserve(waitMs 300) with nothing ready returned after ${waited} ms`);
  // generous (10× waitMs): a loaded machine must not fail it; a wait that ignores waitMs still does
  assert.ok(waited < 3000, `waited ${waited} ms`);
});

/** The worker's loop: reserve with a wait until something comes or the deadline passes (a wait may end early). */
async function consume(b: Broker, queues: string[], max: number, timeoutMs: number): Promise<Delivery[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await b.reserve(queues, max, Math.max(1, deadline - Date.now()));
    if (r.deliveries.length > 0) return r.deliveries;
  }
  return [];
}

contract('a waiting consumer gets a message published through another connection within milliseconds', async (s, t) => {
  const consumer = await s.broker();
  const producer = await s.otherBroker();
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const waiting = consume(consumer, ['q'], 5, 5000).then((ds) => ({ ds, at: performance.now() }));
    await sleep(120);
    const sentAt = performance.now();
    await producer.publish([msg('q', `w${i}`)]);
    const { ds, at } = await waiting;
    assert.deepEqual(tags(ds), [`w${i}`]);
    latencies.push(at - sentAt);
  }
  const worst = Math.max(...latencies);
  t.diagnostic(`${s.kind}: publish -> reserve wake-up ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
  // milliseconds are expected (see the diagnostic); the bound is generous so that a loaded machine does not fail it,
  // and still well below the 5 s a consumer that is never woken would wait
  assert.ok(worst < 1000, `woke after ${worst.toFixed(1)} ms`);
});

contract('a reserve() with nothing ready really waits its waitMs (no early return; Redis polls inside the wait)', async (s) => {
  const b = await s.broker();
  const t0 = Date.now();
  assert.deepEqual(await b.reserve(['q'], 5, 400), { deliveries: [], rejected: [] });
  assert.ok(Date.now() - t0 >= 350, `returned after ${Date.now() - t0} ms`);
});

contract('interrupt() ends a pending wait promptly, with nothing', async (s, t) => {
  const b = await s.broker();
  const waiting = b.reserve(['q'], 5, 10_000);
  await sleep(30);
  const t0 = Date.now();
  b.interrupt();
  const r = await waiting;
  const ended = Date.now() - t0;
  assert.deepEqual(r.deliveries, []);
  t.diagnostic(`${s.kind}: reserve() ended ${ended} ms after interrupt()`);
  assert.ok(ended < 2000, `ended ${ended} ms after interrupt() (the wait was 10 s)`);
  await b.publish([msg('q', 'after')]);
  assert.deepEqual(tags(await consume(b, ['q'], 5, 10_000)), ['after'], 'the broker still works');
});

contract('ack() ends a reservation for good: nothing comes back, even after the lease', async (s) => {
  const b = await s.broker({ leaseTimeout: 0.3 });
  await b.publish([msg('q', 'a'), msg('q', 'b')]);
  const ds = await reserveAll(b, ['q']);
  await b.ack(tags(ds));
  await sleep(450);
  assert.equal(await b.recover(), 0);
  assert.equal(await b.queueLength('q'), 0);
  assert.deepEqual(await reserveAll(b, ['q']), []);
});

contract('requeue() puts a message back in front of its queue, marked redelivered', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q', 'm1'), msg('q', 'm2'), msg('q', 'm3')]);
  const [d1] = (await b.reserve(['q'], 1, 0)).deliveries;
  assert.equal(envOf(d1).headers.redelivered, undefined);
  await b.requeue([d1]);
  assert.equal(await b.queueLength('q'), 3);
  const again = await reserveAll(b, ['q']);
  assert.deepEqual(tags(again), ['m1', 'm2', 'm3']);
  assert.equal(envOf(again[0]).headers.redelivered, true);
  assert.equal(envOf(again[0]).properties.delivery_info.redelivered, true);
  assert.equal(envOf(again[1]).headers.redelivered, undefined);
});

contract('requeue() keeps the priority band; a requeue after ack does nothing', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q', 'hi', 0), msg('q', 'lo', 9)]);
  const [hi, lo] = await reserveAll(b, ['q']);
  await b.requeue([lo]);
  await b.publish([msg('q', 'hi2', 0)]);
  assert.deepEqual(tags(await reserveAll(b, ['q'])), ['hi2', 'lo']);
  await b.ack([hi.tag]);
  await b.requeue([hi]);
  assert.equal(await b.queueLength('q'), 0);
});

contract('renew() keeps a reservation alive past its lease', async (s) => {
  // renewals every 100 ms for 1.2 s against a 1 s lease: a renewal may come up to 900 ms late on a loaded machine
  const b = await s.broker({ leaseTimeout: 1 });
  await b.publish([msg('q', 'r')]);
  const [d] = await reserveAll(b, ['q']);
  for (let i = 0; i < 12; i++) {
    await sleep(100);
    await b.renew([d.tag]);
    assert.equal(await b.recover(), 0, `recovered although renewed (round ${i})`);
  }
  assert.equal(await b.queueLength('q'), 0);
  await sleep(1150);
  assert.equal(await b.recover(), 1, 'comes back once renewals stop');
});

contract('recover() brings back reservations whose lease ran out, marked redelivered', async (s) => {
  const b = await s.broker({ leaseTimeout: 0.3 });
  await b.publish([msg('q', 'x1'), msg('q', 'x2'), msg('q', 'x3')]);
  await b.reserve(['q'], 2, 0);
  await sleep(450);
  const other = await s.otherBroker({ leaseTimeout: 0.3 });
  assert.equal(await other.recover(), 2);
  assert.equal(await b.recover(), 0, 'recovered once');
  assert.equal(await b.queueLength('q'), 3);
  const back = await reserveAll(b, ['q']);
  assert.deepEqual(tags(back).slice(0, 2).sort(), ['x1', 'x2'], 'recovered messages come back in front');
  assert.equal(tags(back)[2], 'x3');
  for (const d of back.slice(0, 2)) assert.equal(envOf(d).headers.redelivered, true);
});

contract('a live lease is not recovered', async (s) => {
  const b = await s.broker({ leaseTimeout: 30 });
  await b.publish([msg('q', 'live')]);
  await reserveAll(b, ['q']);
  await sleep(50);
  assert.equal(await b.recover(), 0);
  assert.equal(await (await s.otherBroker()).recover(), 0);
  assert.equal(await b.queueLength('q'), 0);
});

contract('recover() honours kombu\'s visibility timeout for a reservation without a lease (a Python worker\'s)',
  async (s) => {
    const b = await s.broker({ visibilityTimeout: 5, leaseTimeout: 30 });
    await b.publish([msg('q', 'py')]);
    const [d] = await reserveAll(b, ['q']);
    const r = s.redis!.client(0);
    // what a kombu consumer leaves: unacked + unacked_index, no celeriac lease
    await r.zrem('celeriac.leases', d.tag);
    await r.zadd('unacked_index', String(Date.now() / 1000 - 2), d.tag);
    assert.equal(await b.recover(), 0, 'not yet past the visibility timeout');
    await r.zadd('unacked_index', String(Date.now() / 1000 - 10), d.tag);
    assert.equal(await b.recover(), 1);
    assert.deepEqual(tags(await reserveAll(b, ['q'])), ['py']);
  },
  (s) => s.kind !== 'redis' && 'every reservation here has a lease: no visibility timeout applies');

contract('defer() parks a reservation; promoteDue() moves it back once, when due, even with two promoters',
  async (s) => {
    const a = await s.broker();
    const b = await s.otherBroker();
    await a.publish([msg('q', 'eta')]);
    const [d] = await reserveAll(a, ['q']);
    // due in 1.5 s: the checks before it (four round trips) have that long, even on a loaded machine
    const dueAt = Date.now() + 1500;
    await a.defer(d, dueAt);
    assert.equal(await a.queueLength('q'), 0);
    assert.equal(await a.recover(), 0, 'the reservation ended with the deferral');
    const early = await a.promoteDue();
    assert.equal(early.moved, 0);
    assert.ok(early.nextDueAt !== null && Math.abs(early.nextDueAt - dueAt) <= 1, `nextDueAt ${early.nextDueAt}`);
    await sleep(Math.max(0, dueAt - Date.now()) + 50);
    const [p1, p2] = await Promise.all([a.promoteDue(), b.promoteDue()]);
    assert.equal(p1.moved + p2.moved, 1, 'moved exactly once');
    assert.equal(p1.nextDueAt ?? p2.nextDueAt, null);
    assert.deepEqual(tags(await reserveAll(a, ['q'])), ['eta']);
    assert.deepEqual(await a.promoteDue(), { moved: 0, nextDueAt: null });
  });

contract('publish() with a future dueAt parks the message until promoteDue()', async (s) => {
  const b = await s.broker();
  const dueAt = Date.now() + 1000;
  await b.publish([msg('q', 'later', 0, dueAt), msg('q', 'now')]);
  assert.equal(await b.queueLength('q'), 1);
  assert.deepEqual(tags(await reserveAll(b, ['q'])), ['now']);
  await sleep(Math.max(0, dueAt - Date.now()) + 50);
  assert.equal((await b.promoteDue()).moved, 1);
  assert.deepEqual(tags(await reserveAll(b, ['q'])), ['later']);
});

contract('deadLetter() sets a reserved message aside with its reason; deadLetters() lists newest first', async (s) => {
  const b = await s.broker({ leaseTimeout: 0.3 });
  await b.publish([msg('q', 'd1'), msg('q', 'd2')]);
  const [d1, d2] = await reserveAll(b, ['q']);
  await b.deadLetter(d1, 'first reason');
  await b.deadLetter(d2, 'second reason');
  const dl = await b.deadLetters();
  assert.deepEqual(dl.map((e) => [e.reason, e.queue, e.raw]), [
    ['second reason', 'q', d2.raw], ['first reason', 'q', d1.raw],
  ]);
  assert.ok(dl.every((e) => !Number.isNaN(Date.parse(e.at))), 'at is a date');
  assert.equal((await b.deadLetters(1)).length, 1);
  await sleep(450);
  assert.equal(await b.recover(), 0, 'the reservation ended');
});

contract('messages without a readable delivery tag are rejected by reserve() and kept as dead letters', async (s) => {
  const b = await s.broker();
  const bad = ['not json', '"a string"', '[1, 2]', '{"headers":{}}', '{"properties":{"delivery_tag":""}}'];
  await b.publish([...bad.map((raw) => ({ queue: 'q', priority: 0, raw })), msg('q', 'good')]);
  const r = await b.reserve(['q'], 10, 0);
  assert.deepEqual(tags(r.deliveries), ['good']);
  assert.deepEqual(r.rejected.map((x) => [x.raw, x.queue, x.reason]), [
    ['not json', 'q', 'not a JSON object'],
    ['"a string"', 'q', 'not a JSON object'],
    ['[1, 2]', 'q', 'no properties object'],
    ['{"headers":{}}', 'q', 'no properties object'],
    ['{"properties":{"delivery_tag":""}}', 'q', 'no delivery_tag in properties'],
  ]);
  const dl = await b.deadLetters();
  assert.deepEqual(dl.map((e) => e.raw), [...bad].reverse());
  assert.equal(await b.queueLength('q'), 0);
});

contract('purge() removes the waiting messages of the given queues and counts them', async (s) => {
  const b = await s.broker();
  await b.publish([msg('q1', 'a', 0), msg('q1', 'b', 5), msg('q1', 'c', 9), msg('q2', 'd'), msg('q2', 'e'), msg('q3', 'f')]);
  const [held] = (await b.reserve(['q3'], 1, 0)).deliveries;
  assert.equal(await b.purge(['q1']), 3);
  assert.equal(await b.queueLength('q1'), 0);
  assert.equal(await b.queueLength('q2'), 2);
  assert.equal(await b.purge(['q2', 'q3']), 2, 'a reserved message is not waiting');
  assert.equal(await b.purge(['q1']), 0);
  await b.ack([held.tag]);
});

contract('queueLength() counts the waiting messages of every band, not reserved ones', async (s) => {
  const b = await s.broker();
  assert.equal(await b.queueLength('q'), 0);
  await b.publish([msg('q', 'a', 0), msg('q', 'b', 3), msg('q', 'c', 6), msg('q', 'd', 9), msg('other', 'e')]);
  assert.equal(await b.queueLength('q'), 4);
  await b.reserve(['q'], 1, 0);
  assert.equal(await b.queueLength('q'), 3);
});

contract('leave(): parked messages stay while another worker is alive; the last one out puts them back', async (s) => {
  const a = await s.broker();
  const b = await s.otherBroker();
  await a.heartbeat('worker-a', 5000);
  await b.heartbeat('worker-b', 5000);
  await b.heartbeat('worker-gone', 1);
  await a.publish([msg('q', 'far', 0, Date.now() + 60_000), msg('q', 'farther', 0, Date.now() + 120_000)]);
  await sleep(20);
  assert.deepEqual(await a.leave('worker-a'), { othersAlive: 1, unparked: 0 }, 'an expired heartbeat does not count');
  assert.equal(await a.queueLength('q'), 0);
  assert.deepEqual(await b.leave('worker-b'), { othersAlive: 0, unparked: 2 });
  assert.deepEqual(tags(await reserveAll(a, ['q'])).sort(), ['far', 'farther']);
  assert.deepEqual(await a.promoteDue(), { moved: 0, nextDueAt: null });
  assert.deepEqual(await a.leave('worker-a'), { othersAlive: 0, unparked: 0 });
});

contract('workers() lists the live heartbeats seen from any connection, not lapsed or withdrawn ones', async (s) => {
  const a = await s.broker();
  const b = await s.otherBroker();
  const before = Date.now();
  await a.heartbeat('w1@host:1:a', 5000);
  await b.heartbeat('w2@host:2:b', 5000);
  await b.heartbeat('gone@host:3:c', 1);
  await sleep(20);
  const seen = await b.workers();
  assert.deepEqual(seen.map((w) => w.instance).sort(), ['w1@host:1:a', 'w2@host:2:b']);
  for (const w of seen) assert.ok(w.aliveUntil >= before + 5000, `${w.instance} alive until its heartbeat's end`);
  await a.leave('w1@host:1:a');
  assert.deepEqual((await a.workers()).map((w) => w.instance), ['w2@host:2:b']);
});

contract('beat lock: acquire, renew, refuse another owner, expire, release', async (s) => {
  const a = (await s.broker()).beatStore('app');
  const b = (await s.otherBroker()).beatStore('app');
  // no step has to happen within a short window: leases that are checked as held are long (1 s, or 5 s after the
  // renewal); leases that are checked as expired are short and waited out (late is fine)
  assert.equal(await a.acquire('alice', 1000), true);
  assert.equal(await b.acquire('bob', 1000), false, 'held by another owner');
  assert.equal(await a.acquire('alice', 5000), true, 'renewed by its owner');
  await sleep(1100);
  assert.equal(await b.acquire('bob', 1000), false, 'the renewal extended the lease past its first 1 s');
  const a2 = (await s.broker()).beatStore('app-expiry');
  const b2 = (await s.otherBroker()).beatStore('app-expiry');
  assert.equal(await a2.acquire('alice', 300), true);
  await sleep(450);
  assert.equal(await b2.acquire('bob', 5000), true, 'expired without renewal: free for another');
  await a2.release('alice');
  assert.equal(await a2.acquire('alice', 400), false, 'release by a non-holder does nothing');
  await b2.release('bob');
  assert.equal(await a2.acquire('alice', 400), true);
  const other = (await s.broker()).beatStore('another-app');
  assert.equal(await other.acquire('bob', 400), true, 'each app has its own lock');
});

contract('beat fire(): sends once, only for the lock holder and the expected last run', async (s) => {
  const broker = await s.broker();
  const a = broker.beatStore('app');
  const b = (await s.otherBroker()).beatStore('app');
  const t1 = 1_700_000_000_000;
  const t2 = t1 + 60_000;
  assert.equal(await a.fire('alice', 'tick', null, t1, msg('beat', 'no-lock')), false, 'nobody holds the lock');
  assert.equal(await a.acquire('alice', 5000), true);
  assert.equal(await b.fire('bob', 'tick', null, t1, msg('beat', 'wrong-owner')), false, 'not the holder');
  assert.equal(await broker.queueLength('beat'), 0);
  const sends = await Promise.all([a.fire('alice', 'tick', null, t1, msg('beat', 's1')),
    b.fire('alice', 'tick', null, t1, msg('beat', 's1b'))]);
  assert.deepEqual(sends.sort(), [false, true], 'two processes firing the same tick: one send');
  assert.equal(await a.fire('alice', 'tick', null, t2, msg('beat', 'stale')), false, 'stale expected last run');
  assert.equal(await a.fire('alice', 'tick', t1 + 1, t2, msg('beat', 'wrong')), false);
  assert.equal(await a.fire('alice', 'tick', t1, t2, msg('beat', 's2')), true);
  assert.equal(await a.fire('alice', 'other', null, t1, msg('beat', 's3')), true);
  assert.deepEqual([...(await b.lastRuns())].sort(), [['other', t1], ['tick', t2]]);
  const sent = await reserveAll(broker, ['beat']);
  assert.equal(sent.length, 3);
  assert.ok(['s1', 's1b'].includes(sent[0].tag));
  assert.deepEqual(tags(sent).slice(1), ['s2', 's3']);
  await a.prune(['tick']);
  assert.deepEqual([...(await a.lastRuns())], [['tick', t2]]);
});

contract('revokes: stored ids are seen from every connection with their expiry; other ids are not revoked', async (s) => {
  const a = await s.broker();
  const b = await s.otherBroker();
  assert.deepEqual(await b.liveRevokes(), new Map(), 'nothing revoked in a fresh store');
  const before = Date.now();
  await a.storeRevokes(['r1', 'r2']);
  await a.storeRevokes(['r3'], 60_000);
  await a.storeRevokes([]);
  const found = await b.revoked(['nope', 'r2', 'r1', 'r3', 'also-nope']);
  assert.deepEqual([...found.keys()].sort(), ['r1', 'r2', 'r3']);
  const threeHours = 3 * 60 * 60 * 1000;
  for (const id of ['r1', 'r2']) {
    const until = found.get(id)!;
    assert.ok(until >= before + threeHours && until <= Date.now() + threeHours, `${id}: the default expiry is 3 hours`);
  }
  assert.ok(found.get('r3')! <= Date.now() + 60_000 && found.get('r3')! >= before + 60_000);
  assert.deepEqual(await b.revoked([]), new Map());
  const live = await b.liveRevokes();
  assert.deepEqual([...live.keys()].sort(), ['r1', 'r2', 'r3']);
  assert.equal(live.get('r3'), found.get('r3'));
});

contract('revokes expire; storing an id again never shortens its life; expired ids are pruned on write', async (s) => {
  const a = await s.broker();
  const b = await s.otherBroker();
  await a.storeRevokes(['short', 'kept'], 150);
  await b.storeRevokes(['kept'], 60_000);
  await b.storeRevokes(['long'], 60_000);
  await a.storeRevokes(['long'], 100);
  assert.deepEqual([...(await b.revoked(['short', 'kept', 'long'])).keys()].sort(), ['kept', 'long', 'short']);
  const longUntil = (await a.revoked(['long'])).get('long')!;
  assert.ok(longUntil > Date.now() + 50_000, 'a shorter second revoke did not shorten the first');
  await sleep(250);
  assert.deepEqual([...(await b.revoked(['short', 'kept', 'long'])).keys()].sort(), ['kept', 'long'], 'short expired');
  assert.deepEqual([...(await a.liveRevokes()).keys()].sort(), ['kept', 'long']);
  if (s.kind === 'redis') {
    await a.storeRevokes(['another']);
    assert.equal(await s.redis!.client(0).zscore('celeriac.revoked', 'short'), null, 'pruned from celeriac.revoked on write');
  }
});

contract('revokes are bounded: past revokesMax the ids that expire soonest are dropped', async (s) => {
  const a = await s.broker({ revokesMax: 3 });
  await a.storeRevokes(['e1'], 10_000);
  await a.storeRevokes(['e2'], 20_000);
  await a.storeRevokes(['e3'], 30_000);
  await a.storeRevokes(['e4', 'e5'], 40_000);
  assert.deepEqual([...(await a.liveRevokes()).keys()].sort(), ['e3', 'e4', 'e5']);
  assert.deepEqual([...(await a.revoked(['e1', 'e2', 'e3'])).keys()], ['e3']);
  const many = Array.from({ length: 2500 }, (_, i) => `bulk-${i}`);
  const big = await s.broker({ revokesMax: 2000 });
  await big.storeRevokes(many);
  assert.equal((await big.liveRevokes()).size, 2000, 'a store call bigger than the limit keeps the limit');
  assert.equal((await big.revoked(many)).size, 2000);
});

contract('rateAcquire(): one turn per interval across connections; a turn further than aheadMs is not taken', async (s) => {
  const a = await s.broker();
  const b = await s.otherBroker();
  const turns = [];
  for (let i = 0; i < 6; i++) turns.push(await (i % 2 ? b : a).rateAcquire('contract.rated', 200, 1000));
  assert.ok(turns.every((t) => t.reserved), JSON.stringify(turns));
  const waits = turns.map((t) => t.waitMs);
  for (let i = 1; i < waits.length; i++) {
    // each turn is one interval after the one before, whoever asked (allow for the time the calls take)
    assert.ok(waits[i] - waits[i - 1] > 150 && waits[i] - waits[i - 1] <= 200, `waits ${waits.join(', ')}`);
  }
  const refused = await a.rateAcquire('contract.rated', 200, 1000);
  assert.equal(refused.reserved, false, 'the seventh turn is 1200 ms away: not taken');
  assert.ok(refused.waitMs > 0 && refused.waitMs <= 200, `ask again in ${refused.waitMs} ms`);
  assert.equal((await a.rateAcquire('contract.other', 200, 1000)).waitMs, 0, 'another task has its own turns');
});

contract('after close(), a pending reserve() ends with nothing and every call rejects with E_CLOSED', async (s, t) => {
  const b = await s.broker();
  const waiting = b.reserve(['q'], 5, 10_000);
  await sleep(30);
  const t0 = Date.now();
  await b.close();
  assert.deepEqual((await waiting).deliveries, []);
  const ended = Date.now() - t0;
  t.diagnostic(`${s.kind}: reserve() ended ${ended} ms after close()`);
  assert.ok(ended < 2000, `ended ${ended} ms after close() (the wait was 10 s)`);
  const closed = (e: unknown) => e instanceof CeleriacError && e.code === 'E_CLOSED';
  await assert.rejects(b.publish([msg('q', 'late')]), closed);
  await assert.rejects(b.reserve(['q'], 5, 0), closed);
  await assert.rejects(b.ack(['late']), closed);
  await assert.rejects(b.deadLetters(), closed);
  await assert.rejects(b.beatStore('app').acquire('alice', 1000), closed);
  await assert.rejects(b.storeRevokes(['late']), closed);
  await assert.rejects(b.revoked(['late']), closed);
});

for (const kind of KINDS) {
  describe(`broker contract: ${kind}`, () => {
    const s = new Subject(kind);
    before(() => s.setup());
    after(() => s.teardown());
    afterEach(() => s.reset());
    for (const c of cases) {
      test(c.name, { skip: c.only?.(s) || false }, (t) => c.run(s, t));
    }
  });
}
