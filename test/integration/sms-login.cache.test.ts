// The example's cache and connections, one suite run against both stores (the embedded SQLite file and a real
// redis-server): JSON values, TTLs, prefix and version, add (NX), atomic incr and delete-claims, capped lists, and the
// raw connection underneath; plus the pool handing out its connections and the SQLite store shared by two connections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cache } from '../../examples/sms-login/cache/cache.ts';
import type { KvConnection } from '../../examples/sms-login/cache/connection.ts';
import { ConnectionPool } from '../../examples/sms-login/cache/pool.ts';
import { RedisConnection } from '../../examples/sms-login/cache/redis-connection.ts';
import { SqliteConnection } from '../../examples/sms-login/cache/sqlite-connection.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
let dir: string;
let redis: RedisServer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sms-login-cache-'));
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => KvConnection]> = [
  ['sqlite', () => new SqliteConnection(`sqlite:///${join(dir, 'cache.db')}`)],
  ['redis', () => new RedisConnection(redis.url(4))],
];

for (const [name, open] of stores) {
  describe(`cache on ${name}`, () => {
    let a: KvConnection;
    let b: KvConnection;
    let cache: Cache;
    before(() => {
      a = open();
      b = open(); // a second connection to the same store: another process, as far as atomicity goes
      cache = new Cache(() => a, { prefix: `t_${name}`, version: 1 });
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    test('JSON round trip under <prefix>:<version>:<key>; a new version misses everything', async () => {
      const value = { list: [1, 'two', { three: true }], n: null, s: 'ü' };
      await cache.set('thing', value, 60);
      assert.deepEqual(await cache.get('thing'), value);
      assert.equal(cache.makeKey('thing'), `t_${name}:1:thing`);
      assert.equal(await a.get(`t_${name}:1:thing`), JSON.stringify(value));
      const v2 = new Cache(() => a, { prefix: `t_${name}`, version: 2 });
      assert.equal(await v2.get('thing'), null);
      await assert.rejects(cache.set('f', () => 1), /only JSON/);
    });

    test('TTLs: default 300 s, explicit, none; an expired key is absent at once', async () => {
      await cache.set('default', 1);
      const ttl = await cache.ttl('default');
      assert.ok(ttl !== null && ttl > 295 && ttl <= 300, String(ttl));
      await cache.set('forever', 1, null);
      assert.equal(await cache.ttl('forever'), null);
      // 1.5 s to read it back (10× the 0.15 s this used to allow), then waited out
      await cache.set('short', 'x', 1.5);
      assert.equal(await cache.get('short'), 'x');
      await wait(1700);
      assert.equal(await cache.get('short'), null);
      assert.equal(await cache.ttl('short'), 0);
      assert.equal(await cache.delete('short'), false);
      assert.equal(await cache.add('short', 'again', 5), true, 'an expired key counts as absent for add');
    });

    test('add is set-if-absent; delete tells who removed the key', async () => {
      assert.equal(await cache.add('once', 1, 5), true);
      assert.equal(await cache.add('once', 2, 5), false);
      assert.equal(await cache.get('once'), 1);
      const racers = await Promise.all([cache.delete('once'), new Cache(() => b, { prefix: `t_${name}`, version: 1 }).delete('once')]);
      assert.deepEqual(racers.sort(), [false, true]);
    });

    test('incr is atomic across connections, counts from 0, keeps the TTL, refuses non-integers', async () => {
      const other = new Cache(() => b, { prefix: `t_${name}`, version: 1 });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? cache : other).incr('hits')));
      assert.deepEqual(results.sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
      assert.equal(await cache.get('hits'), 50);
      assert.equal(await cache.incr('with_ttl', 1, 60), 1);
      assert.equal(await cache.incr('with_ttl', 5), 6);
      const ttl = await cache.ttl('with_ttl');
      assert.ok(ttl !== null && ttl > 55, String(ttl));
      await cache.set('word', 'abc', 60);
      await assert.rejects(cache.incr('word'), /not an integer/);
    });

    test('lists are capped, newest first; the raw connection is unprefixed', async () => {
      for (let i = 0; i < 7; i++) await a.lpush('raw:list', `m${i}`, 5);
      assert.deepEqual(await b.lrange('raw:list', 0, -1), ['m6', 'm5', 'm4', 'm3', 'm2']);
      assert.deepEqual(await b.lrange('raw:list', 1, 2), ['m5', 'm4']);
      assert.equal(cache.connection(), a);
      assert.equal(await cache.connection().incr('raw:count'), 1);
      assert.equal(await b.get('raw:count'), '1');
      assert.equal(await a.del('raw:list', 'raw:count', 'raw:nothing'), 2);
      assert.deepEqual(await a.lrange('raw:list', 0, -1), []);
    });

    test('set with NX and PX, pexpire and pttl keep Redis meanings', async () => {
      assert.equal(await a.pttl('nope'), -2);
      assert.equal(await a.pexpire('nope', 1000), false);
      assert.equal(await a.set('k', 'v'), true);
      assert.equal(await a.pttl('k'), -1);
      assert.equal(await a.set('k', 'w', { nx: true }), false);
      assert.equal(await a.pexpire('k', 60_000), true);
      const left = await b.pttl('k');
      assert.ok(left > 50_000 && left <= 60_000, String(left));
      await a.ping();
    });
  });
}

describe('the connection pool', () => {
  test('on Redis it opens connections lazily up to its size and hands them out in turn', async () => {
    const pool = new ConnectionPool(redis.url(5), { maxConnections: 3 });
    const got = Array.from({ length: 7 }, () => pool.connection());
    assert.equal(pool.size, 3);
    assert.equal(new Set(got).size, 3);
    await Promise.all(got.map((c, i) => c.set(`p${i}`, String(i))));
    assert.equal(await got[0].get('p6'), '6');
    await pool.close();
    assert.throws(() => pool.connection(), /closed/);
  });

  test('on SQLite it is one connection per process', async () => {
    const pool = new ConnectionPool(`sqlite:///${join(dir, 'pool.db')}`, { maxConnections: 8 });
    assert.equal(pool.connection(), pool.connection());
    assert.equal(pool.size, 1);
    await pool.close();
  });
});
