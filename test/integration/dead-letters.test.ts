// What a worker on a real redis-server leaves behind for messages it must refuse: nothing reserved for ever, and
// dead letters small enough to keep (issue "Nothing silent", items 4 and 7).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Celeriac, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

function envelope(id: string, tag: string, body = b64('[[2, 3], {}, {}]')): string {
  return JSON.stringify({
    body, 'content-type': 'application/json', 'content-encoding': 'utf-8',
    headers: { lang: 'py', task: 'dl.add', id },
    properties: { delivery_tag: tag, body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'celery' } },
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a delivery tag that is not valid UTF-8 is refused at reservation into the dead letters, nothing stays reserved', async () => {
  await redis.flush();
  const app = new Celeriac('dl', { broker: redis.url(0), backend: redis.url(1) });
  const add = app.task('dl.add', (a: number, b: number) => a + b);
  const c0 = redis.client(0);
  // the tag's bytes: "bad-" 0xff 0xfe "-tag" (ioredis decodes 0xff as U+FFFD, so an ack of the decoded tag misses)
  const raw = Buffer.from(envelope('bad-utf8-1', 'bad-@@-tag'));
  const at = raw.indexOf('@@');
  raw[at] = 0xff;
  raw[at + 1] = 0xfe;
  await c0.lpush('celery', raw);
  const worker = new Worker(app, { logger: quietLogger() });
  await worker.start();
  try {
    await until('the bad message to leave the queue', async () => (await c0.llen('celery')) === 0);
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5, 'a normal message after it still runs');
    await worker.idle();
    assert.equal(await c0.hlen('unacked'), 0, 'nothing left in unacked');
    assert.equal(await c0.zcard('unacked_index'), 0, 'nothing left in unacked_index');
    assert.equal(await c0.zcard('celeriac.leases'), 0, 'no lease left');
    const dead = await (await app.broker()).deadLetters();
    assert.equal(dead.length, 1, JSON.stringify(dead));
    assert.match(dead[0].reason, /delivery_tag.*UTF-8/);
    assert.equal(dead[0].queue, 'celery');
    assert.equal(dead[0].size, raw.length);
  } finally {
    await worker.stop();
    await app.close();
  }
});

test('a 70 MB message is refused inside the reservation script: a dead letter under 64 KB, the worker never reads it', async (t) => {
  await redis.flush();
  const app = new Celeriac('dl', { broker: redis.url(0), backend: redis.url(1) });
  const add = app.task('dl.add', (a: number, b: number) => a + b);
  const c0 = redis.client(0);
  const size = 70 * 1024 * 1024;
  let sha1 = '';
  {
    const head = envelope('huge-1', 'tag-huge-1', '');
    // the body is the first field: fill it to the size, as one Buffer that is dropped after the push
    const at = head.indexOf('"body":"') + '"body":"'.length;
    const big = Buffer.alloc(size, 'A');
    big.write(head.slice(0, at), 0);
    const tail = head.slice(at);
    big.write(tail, size - Buffer.byteLength(tail));
    sha1 = createHash('sha1').update(big).digest('hex');
    await c0.lpush('celery', big);
  }
  (globalThis as { gc?: () => void }).gc?.();
  const lines: string[] = [];
  const worker = new Worker(app, { logger: quietLogger(lines) });
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  await worker.start();
  try {
    await until('the huge message to leave the queue', async () => (await c0.llen('celery')) === 0, 30_000);
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5, 'the worker keeps running other tasks');
    await worker.idle();
    clearInterval(sampler);
    const jump = peak - rss0;
    t.diagnostic(`worker RSS ${(rss0 / 2 ** 20).toFixed(1)} MB before, peak +${(jump / 2 ** 20).toFixed(1)} MB`);
    assert.ok(jump < 60 * 2 ** 20, `RSS jumped by ${(jump / 2 ** 20).toFixed(1)} MB`);
    assert.equal(await c0.llen('celeriac.deadletter'), 1);
    const kept = await c0.lindexBuffer('celeriac.deadletter', 0);
    assert.ok(kept, 'the dead letter is kept');
    t.diagnostic(`dead letter of a ${size}-byte message: ${kept.length} bytes`);
    assert.ok(kept.length < 64 * 1024, `the dead letter is ${kept.length} bytes`);
    const entry = JSON.parse(kept.toString());
    assert.match(entry.reason, /maxMessageBytes/);
    assert.equal(entry.queue, 'celery');
    assert.equal(entry.size, size);
    assert.equal(entry.sha1, sha1);
    assert.equal(entry.truncated, true);
    assert.ok(entry.raw.startsWith('{"body":"AAAA'), entry.raw.slice(0, 40));
    assert.equal(await c0.hlen('unacked'), 0, 'nothing left reserved');
    assert.equal(await app.AsyncResult('huge-1').state(), 'FAILURE', 'its task id, found without reading it whole, is FAILURE');
    assert.ok(lines.some((l) => /ERROR/.test(l) && /maxMessageBytes/.test(l)), 'one error line says why');
    assert.equal(worker.state, 'running');
  } catch (err) {
    clearInterval(sampler);
    throw err;
  } finally {
    await worker.stop();
    await app.close();
  }
});
