// The home page's data: banners served from the cache and refreshed by update_banner on beat (every second here,
// every minute by default), and the visit counter's atomic increment under concurrent requests.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

let srv: SmsLoginServer;
before(async () => {
  srv = await startSmsLogin({ SMS_LOGIN_BANNER_EVERY: '1' });
});
after(async () => {
  assert.equal(await srv.stop(), 0, srv.proc.out);
});

test('banners come from the cache; a change in the database shows once beat has run update_banner', async () => {
  const first = await srv.api('GET', '/api/banners');
  assert.equal(first.status, 200);
  assert.equal(first.body.banners.length, 3);
  assert.deepEqual(Object.keys(first.body.banners[0]).sort(), ['color', 'id', 'link', 'subtitle', 'title']);
  const again = await srv.api('GET', '/api/banners');
  assert.equal(again.body.source, 'cache');

  const db = new Database(join(srv.dir, 'app.db'));
  try {
    db.prepare('INSERT INTO banners (title, subtitle, position, updated_at) VALUES (?, ?, ?, ?)').run('Fresh from beat', 'new', 9, Date.now());
  } finally {
    db.close();
  }
  const deadline = Date.now() + 15_000;
  let seen: any = null;
  while (Date.now() < deadline) {
    seen = (await srv.api('GET', '/api/banners')).body;
    if (seen.banners.some((b: { title: string }) => b.title === 'Fresh from beat')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(seen.banners.some((b: { title: string }) => b.title === 'Fresh from beat'), JSON.stringify(seen));
  assert.equal(seen.source, 'cache');
  assert.ok(Date.parse(seen.refreshedAt) > Date.parse(first.body.refreshedAt));
  assert.match(srv.proc.out, /Scheduler: Sending due task update_banner \(sms_login\.tasks\.update_banner\)/);
  assert.match(srv.proc.out, /Task sms_login\.tasks\.update_banner\[[0-9a-f-]{36}\] succeeded in [\d.e-]+s: \{"count":4,/);
});

test('the visit counter is one atomic INCR: 40 concurrent visits get 40 different numbers', async () => {
  const start = (await srv.api('GET', '/api/visits')).body.visits;
  const answers = await Promise.all(Array.from({ length: 40 }, () => srv.api('GET', '/api/visits')));
  const numbers = answers.map((a) => a.body.visits as number).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: 40 }, (_, i) => start + 1 + i));
});

test('health names the cache and the broker, both on the embedded SQLite files', async () => {
  const r = await srv.api('GET', '/api/health');
  assert.equal(r.body.ok, true);
  assert.equal(r.body.cache, `sqlite:///${join(srv.dir, 'cache.db')}`);
  assert.equal(r.body.broker, `sqlite:///${join(srv.dir, 'celeriac.db')}`);
});
