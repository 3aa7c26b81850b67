// The same app with CELERIAC_BROKER_URL=redis://…: queues, results, beat and the cache all on a real redis-server.
// The SMS-code login end to end, then what it left in Redis: prefixed and versioned cache keys with their TTLs, the
// token stored by digest only, the counter on the raw connection, the banner list, and Celery's result key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { DEMO, freshPhone, startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

let redis: RedisServer;
let srv: SmsLoginServer;
before(async () => {
  redis = await startRedis();
  srv = await startSmsLogin({
    CELERIAC_BROKER_URL: redis.url(1),
    SMS_LOGIN_CACHE_VERSION: '3',
    SMS_LOGIN_CODE_TTL: '300',
    SMS_LOGIN_RESEND_SECONDS: '60',
  });
});
after(async () => {
  assert.equal(await srv.stop(), 0, srv.proc.out);
  await redis.dispose();
});

test('health: cache and broker are the Redis server', async () => {
  const r = await srv.api('GET', '/api/health');
  assert.equal(r.body.cache, redis.url(1));
  assert.match(r.body.broker, new RegExp(`127\\.0\\.0\\.1:${redis.port}/1`));
});

test('SMS-code login on Redis, and the keys it leaves', async () => {
  const db = redis.client(1);
  const { code, taskId } = await srv.requestCode(DEMO.phone);
  assert.equal(await db.get(`sms_login:3:sms_code:login:${DEMO.phone}`), JSON.stringify(code));
  const codeTtl = await db.pttl(`sms_login:3:sms_code:login:${DEMO.phone}`);
  assert.ok(codeTtl > 290_000 && codeTtl <= 300_000, `code TTL ${codeTtl}`);
  const throttle = await db.pttl(`sms_login:3:sms_throttle:${DEMO.phone}`);
  assert.ok(throttle > 50_000 && throttle <= 60_000, `throttle TTL ${throttle}`);
  const again = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
  assert.equal(again.status, 429);
  assert.ok(again.body.error.retryAfter > 50 && again.body.error.retryAfter <= 60);

  const meta = JSON.parse((await db.get(`celery-task-meta-${taskId}`))!);
  assert.equal(meta.status, 'SUCCESS');
  assert.equal(meta.result.phone, DEMO.phone);

  const wrong = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: code === '000000' ? '000001' : '000000' });
  assert.equal(wrong.body.error.code, 'code_wrong');
  assert.equal(await db.get(`sms_login:3:sms_attempts:login:${DEMO.phone}`), '1');

  const login = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.username, DEMO.username);
  assert.equal(await db.exists(`sms_login:3:sms_code:login:${DEMO.phone}`), 0, 'used codes are gone');
  assert.equal(await db.exists(`sms_login:3:sms_attempts:login:${DEMO.phone}`), 0);

  const digest = createHash('sha256').update(login.body.token).digest('hex');
  const session = JSON.parse((await db.get(`sms_login:3:token:${digest}`))!);
  assert.equal(session.username, DEMO.username);
  const tokenTtl = await db.ttl(`sms_login:3:token:${digest}`);
  assert.ok(tokenTtl > 7 * 86400 - 60 && tokenTtl <= 7 * 86400, `token TTL ${tokenTtl}`);
  assert.deepEqual(await db.keys(`*${login.body.token}*`), [], 'the token itself is stored nowhere');
  assert.equal((await srv.api('GET', '/api/me', undefined, login.body.token)).body.username, DEMO.username);
});

test('registration on Redis', async () => {
  const phone = freshPhone();
  const { code } = await srv.requestCode(phone, 'register');
  const r = await srv.api('POST', '/api/register', { phone, code, password: 'redis-password' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal((await srv.api('POST', '/api/login/password', { account: phone, password: 'redis-password' })).status, 200);
});

test('the counter is a plain Redis integer on the raw connection; the banner list is cached without a TTL', async () => {
  const db = redis.client(1);
  const a = (await srv.api('GET', '/api/visits')).body.visits;
  const b = (await srv.api('GET', '/api/visits')).body.visits;
  assert.equal(b, a + 1);
  assert.equal(await db.get('sms_login:visits'), String(b));

  await srv.api('GET', '/api/banners');
  const cached = JSON.parse((await db.get('sms_login:3:banner_list'))!);
  assert.equal(cached.banners.length, 3);
  assert.equal(await db.ttl('sms_login:3:banner_list'), -1);

  const outbox = await db.lrange('sms_login:outbox', 0, -1);
  assert.ok(outbox.length >= 2 && outbox.every((m) => JSON.parse(m).text.includes('verification code')));
});

test('Redis down: a clear 503 (not a 500); back up: the app answers again without a restart', async () => {
  await redis.stop();
  try {
    const down = await srv.api('GET', '/api/visits');
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal(down.body.error.code, 'unavailable');
    const send = await srv.api('POST', '/api/sms/send', { phone: freshPhone(), purpose: 'register' });
    assert.equal(send.status, 503, JSON.stringify(send.body));
  } finally {
    await redis.start();
  }
  const deadline = Date.now() + 15_000;
  let up = await srv.api('GET', '/api/visits');
  while (up.status !== 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    up = await srv.api('GET', '/api/visits');
  }
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal(up.body.visits, 1, 'no persistence in the test server: the counter starts again');
});
