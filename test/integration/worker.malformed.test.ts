// Hostile input: every message kind that kills or poisons a Python worker (fixture s12) and a few fuzzed ones.
// The worker must stay up, log one line each, store FAILURE when the message names an id, and dead-letter the raw
// message with its reason: nothing dropped, nothing evaluated.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { loadFixture } from '../helpers/fixtures.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});

const s12 = loadFixture('s12_handcrafted_messages_vs_python_worker.json').cases;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function envelope(over: Record<string, unknown>, id: string): string {
  return JSON.stringify({
    body: b64('[[2, 3], {}, {}]'), 'content-type': 'application/json', 'content-encoding': 'utf-8',
    headers: { task: 'm.add', id },
    properties: { delivery_tag: `tag-${id}`, body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'celery' } },
    ...over,
  });
}

test('malformed messages are dead-lettered with a reason, FAILURE is stored, and the worker keeps working', async () => {
  const app = new Celeriac('m', { broker: redis.url(0), backend: redis.url(1), maxMessageBytes: 64 * 1024 });
  const add = app.task('m.add', (a: number, b: number) => a + b);
  const rename = (raw: string) => raw.replace('celery_peer.add', 'm.add');
  const cases: Array<{ name: string; raw: string; id: string | null; reason: RegExp }> = [
    { name: 'm3 no delivery_tag', raw: rename(JSON.stringify(s12.m3_no_delivery_tag.message)), id: 'min-3', reason: /delivery_tag/ },
    { name: 'm4 no delivery_info', raw: rename(JSON.stringify(s12.m4_no_delivery_info.message)), id: 'min-4', reason: /delivery_info/ },
    { name: 'm5 body without embed', raw: rename(JSON.stringify(s12.m5_body_without_embed.message)), id: 'min-5', reason: /embed|3/ },
    { name: 'm6 no content type', raw: rename(JSON.stringify(s12.m6_no_content_type.message)), id: 'min-6', reason: /content.type/i },
    { name: 'm9 yaml', raw: rename(JSON.stringify(s12.m9_not_accepted_content_type.message)), id: 'min-9', reason: /yaml/ },
    { name: 'pickle', raw: envelope({ 'content-type': 'application/x-python-serialize', body: b64('cos\nsystem\n(S"id"\ntR.') }, 'pk-1'), id: 'pk-1', reason: /python-serialize|not accepted/ },
    { name: 'random bytes', raw: '\x00\xff\x13garbage{{', id: null, reason: /JSON/ },
    { name: 'truncated JSON', raw: envelope({}, 'tr-1').slice(0, 60), id: null, reason: /JSON/ },
    { name: 'array envelope', raw: '[1,2,3]', id: null, reason: /JSON object|properties/ },
    { name: 'body not base64 JSON', raw: envelope({ body: b64('{not json') }, 'bj-1'), id: 'bj-1', reason: /JSON/ },
    { name: 'args not a list', raw: envelope({ body: b64('[{"a": 1}, {}, {}]') }, 'al-1'), id: 'al-1', reason: /args/ },
    { name: 'retries wrong type', raw: envelope({ headers: { task: 'm.add', id: 'rt-1', retries: 'many' } }, 'rt-1'), id: 'rt-1', reason: /retries/ },
    { name: 'eta not a date', raw: envelope({ headers: { task: 'm.add', id: 'et-1', eta: 'tomorrow-ish' } }, 'et-1'), id: 'et-1', reason: /eta/ },
    { name: 'task not a string', raw: envelope({ headers: { task: 42, id: 'tn-1' } }, 'tn-1'), id: 'tn-1', reason: /task/ },
    { name: 'huge body', raw: envelope({ body: b64(JSON.stringify([['x'.repeat(100_000)], {}, {}])) }, 'hg-1'), id: 'hg-1', reason: /maxMessageBytes/ },
  ];
  const c0 = redis.client(0);
  for (const c of cases) await c0.lpush('celery', c.raw);
  const lines: string[] = [];
  const worker = new Worker(app, { logger: quietLogger(lines) });
  await worker.start();
  try {
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5, 'the worker still runs good tasks');
    await worker.idle();
    const dead = await (await app.broker()).deadLetters(100);
    assert.equal(dead.length, cases.length, `dead letters: ${JSON.stringify(dead.map((d) => d.reason))}`);
    for (const c of cases) {
      // a dead letter keeps a big message's head only, with the size of all of it
      const entry = dead.find((d) => d.raw === c.raw || (d.truncated && c.raw.startsWith(d.raw) && d.size === Buffer.byteLength(c.raw)));
      assert.ok(entry, `${c.name} is in the dead-letter list with its raw message`);
      assert.match(entry.reason, c.reason, `${c.name}: ${entry.reason}`);
      assert.equal(entry.queue, 'celery');
      if (c.id) {
        const res = app.AsyncResult(c.id);
        assert.equal(await res.state(), 'FAILURE', `${c.name} stored FAILURE`);
        assert.equal(((await res.info()) as { exc_type: string }).exc_type, 'MalformedMessage');
      }
    }
    const errorLines = lines.filter((l) => /ERROR/.test(l) && /(invalid|unreadable) task message|unreadable message/i.test(l));
    assert.equal(errorLines.length, cases.length, 'one log line per bad message');
    assert.equal(await c0.hlen('unacked'), 0, 'nothing left reserved');
    assert.equal(await c0.llen('celery'), 0);
    assert.equal(worker.state, 'running');
  } finally {
    await worker.stop();
    await app.close();
  }
});
