// The remote-control channel (ControlChannel in src/broker/broker.ts) on the brokers that have one, redis:// and
// sqlite://: broadcasts reach every listener on other connections (other processes), replies reach only their caller,
// and on SQLite the tables stay bounded.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { Broker, ControlChannel } from '../../src/broker/broker.ts';
import { EVENTS_KEPT, PIDBOX_KEEP_MS } from '../../src/broker/sqlite/control.ts';
import { Subject, sleep } from './subjects.ts';

const control = (b: Broker): ControlChannel => {
  assert.ok(b.control, 'the broker has a control channel');
  return b.control;
};

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const kind of ['sqlite', 'redis'] as const) {
  describe(`control channel contract: ${kind}`, () => {
    const s = new Subject(kind);
    before(() => s.setup());
    after(() => s.teardown());
    afterEach(() => s.reset());

    test('a broadcast reaches every listener on other connections; each reply reaches the caller', async () => {
      const caller = control(await s.broker());
      const workers = [control(await s.otherBroker()), control(await s.otherBroker())];
      const heard: string[][] = [[], []];
      const stops = await Promise.all(workers.map((w, i) => w.listen((raw) => {
        heard[i].push(raw);
        void w.reply('oid-1', `reply ${i} to ${raw}`);
      })));
      const t0 = Date.now();
      const replies = await caller.request('hello?', 'oid-1', 10_000, 2);
      const took = Date.now() - t0;
      assert.deepEqual(replies.sort(), ['reply 0 to hello?', 'reply 1 to hello?']);
      assert.deepEqual(heard, [['hello?'], ['hello?']]);
      assert.ok(took < 2000, `both replies within ${took} ms (the wait ends at the expected count)`);
      for (const stop of stops) await stop();
    });

    test('without an expected count the caller collects until its timeout; a cast returns at once', async () => {
      const caller = control(await s.broker());
      const worker = control(await s.otherBroker());
      const casts: string[] = [];
      const stop = await worker.listen((raw) => {
        if (raw === 'ask') void worker.reply('oid-2', 'answer');
        else casts.push(raw);
      });
      const t0 = Date.now();
      assert.deepEqual(await caller.request('ask', 'oid-2', 600), ['answer']);
      const waited = Date.now() - t0;
      assert.ok(waited >= 550 && waited < 3000, `waited ${waited} ms for a 600 ms timeout`);
      const c0 = Date.now();
      assert.deepEqual(await caller.request('cast', null, 0), []);
      assert.ok(Date.now() - c0 < 500, 'a cast does not wait');
      await until(() => casts.length === 1, 'the cast');
      assert.deepEqual(casts, ['cast']);
      await stop();
    });

    test('a listener hears only what is sent after it started and before it stopped; replies go to their caller only', async () => {
      const caller = control(await s.broker());
      const worker = control(await s.otherBroker());
      await caller.request('before', null, 0);
      await sleep(100);
      const heard: string[] = [];
      const stop = await worker.listen((raw) => {
        heard.push(raw);
        void worker.reply('someone-else', 'not for you');
      });
      assert.deepEqual(await caller.request('during', 'oid-3', 500), [], 'a reply to another oid is not ours');
      assert.deepEqual(heard, ['during']);
      await stop();
      await caller.request('after', null, 0);
      await sleep(300);
      assert.deepEqual(heard, ['during']);
    });

    test('many requests in a row arrive in order', async () => {
      const caller = control(await s.broker());
      const worker = control(await s.otherBroker());
      const heard: string[] = [];
      const stop = await worker.listen((raw) => heard.push(raw));
      const sent = Array.from({ length: 250 }, (_, i) => `r${i}`);
      for (const r of sent) await caller.request(r, null, 0);
      await until(() => heard.length === sent.length, `${sent.length} requests (have ${heard.length})`);
      assert.deepEqual(heard, sent);
      await stop();
    });

    test('events are accepted (a monitor may read them)', async () => {
      const b = control(await s.broker());
      await b.event('worker.heartbeat', '{"type":"worker-heartbeat"}');
    });

    if (kind === 'sqlite') {
      test('sqlite: old requests and untaken replies are pruned on write; events stay bounded', async () => {
        const broker = await s.broker();
        const c = control(broker);
        const file = s.url('broker').replace(/^sqlite:\/\/\//, '');
        const db = new Database(file);
        try {
          const old = Date.now() - PIDBOX_KEEP_MS - 1000;
          db.prepare(`INSERT INTO celeriac_pidbox (at, raw) VALUES (?, 'old')`).run(old);
          db.prepare(`INSERT INTO celeriac_pidbox_replies (reply_to, at, raw) VALUES ('gone', ?, 'old')`).run(old);
          const insert = db.prepare(`INSERT INTO celeriac_events (routing_key, at, raw) VALUES ('worker.heartbeat', ?, 'e')`);
          db.transaction(() => {
            for (let i = 0; i < EVENTS_KEPT + 50; i++) insert.run(Date.now());
          })();
          await c.request('new', null, 0);
          await c.reply('someone', 'new');
          await c.event('worker.heartbeat', 'latest');
          assert.deepEqual(db.prepare(`SELECT raw FROM celeriac_pidbox`).pluck().all(), ['new']);
          assert.deepEqual(db.prepare(`SELECT raw FROM celeriac_pidbox_replies`).pluck().all(), ['new']);
          assert.equal(db.prepare(`SELECT COUNT(*) FROM celeriac_events`).pluck().get(), EVENTS_KEPT);
          assert.equal(db.prepare(`SELECT raw FROM celeriac_events ORDER BY id DESC LIMIT 1`).pluck().get(), 'latest');
        } finally {
          db.close();
        }
      });

      test('sqlite: close() ends a pending reply wait', async () => {
        const broker = await s.otherBroker();
        const pending = control(broker).request('anyone?', 'oid-4', 10_000);
        await sleep(100);
        const t0 = Date.now();
        await broker.close();
        assert.deepEqual(await pending, []);
        assert.ok(Date.now() - t0 < 1000);
      });
    }
  });
}
