// Registration over HTTP: a new phone gets a code, code + password create the account, which then logs in every way;
// a taken phone or username, bad passwords and usernames, and codes used for the other purpose are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DEMO, freshPhone, startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

let srv: SmsLoginServer;
before(async () => {
  srv = await startSmsLogin();
});
after(async () => {
  assert.equal(await srv.stop(), 0, srv.proc.out);
});

function assertError(r: { status: number; body: any }, status: number, code: string, field?: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  if (field) assert.equal(r.body.error.field, field);
}

test('register with phone, code and password; the account logs in by phone and password, and by SMS code', async () => {
  const phone = freshPhone();
  assert.equal((await srv.api('GET', `/api/users/check-phone?phone=${phone}`)).body.registered, false);
  const { code } = await srv.requestCode(phone, 'register');
  const r = await srv.api('POST', '/api/register', { phone, code, password: 'a-good-password' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual(r.body, { username: phone, phone }, 'the username defaults to the phone number');
  assert.equal((await srv.api('GET', `/api/users/check-phone?phone=${phone}`)).body.registered, true);

  const byPhone = await srv.api('POST', '/api/login/password', { account: phone, password: 'a-good-password' });
  assert.equal(byPhone.status, 200, JSON.stringify(byPhone.body));
  assert.equal(byPhone.body.username, phone);

  await new Promise((res) => setTimeout(res, 2100));
  const login = await srv.requestCode(phone, 'login');
  const bySms = await srv.api('POST', '/api/login/sms', { phone, code: login.code });
  assert.equal(bySms.status, 200);
  assert.equal(bySms.body.username, phone);
});

test('with a chosen username; the password is stored as a scrypt hash, never in clear', async () => {
  const phone = freshPhone();
  const { code } = await srv.requestCode(phone, 'register');
  const r = await srv.api('POST', '/api/register', { phone, code, password: 'another-password', username: 'bob_the_builder' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.username, 'bob_the_builder');
  const login = await srv.api('POST', '/api/login/password', { account: 'bob_the_builder', password: 'another-password' });
  assert.equal(login.body.username, 'bob_the_builder');

  const db = new Database(join(srv.dir, 'app.db'), { readonly: true });
  try {
    const row = db.prepare('SELECT password_hash FROM users WHERE phone = ?').get(phone) as { password_hash: string };
    assert.match(row.password_hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{86}==$/);
    assert.ok(!row.password_hash.includes('another-password'));
  } finally {
    db.close();
  }
});

test('a registered phone: no register code (409), and registering it is refused (409)', async () => {
  assertError(await srv.api('POST', '/api/sms/send', { phone: DEMO.phone, purpose: 'register' }), 409, 'phone_taken', 'phone');
  assertError(await srv.api('POST', '/api/register', { phone: DEMO.phone, code: '123456', password: 'whatever-pass' }), 409, 'phone_taken', 'phone');
});

test('a taken username is refused before the code is spent; the same code then works with another name', async () => {
  const phone = freshPhone();
  const { code } = await srv.requestCode(phone, 'register');
  assertError(await srv.api('POST', '/api/register', { phone, code, password: 'a-good-password', username: DEMO.username }), 409, 'username_taken', 'username');
  assertError(await srv.api('POST', '/api/register', { phone, code, password: 'a-good-password', username: 'ALICE' }), 409, 'username_taken', 'username');
  const ok = await srv.api('POST', '/api/register', { phone, code, password: 'a-good-password', username: 'carol' });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
});

test('bad passwords, usernames, phones and codes are 400s that name the field', async () => {
  const phone = freshPhone();
  const base = { phone, code: '123456', password: 'a-good-password' };
  assertError(await srv.api('POST', '/api/register', { ...base, password: 'short' }), 400, 'bad_password', 'password');
  assertError(await srv.api('POST', '/api/register', { ...base, password: 'x'.repeat(65) }), 400, 'bad_password', 'password');
  assertError(await srv.api('POST', '/api/register', { ...base, password: undefined }), 400, 'bad_password', 'password');
  assertError(await srv.api('POST', '/api/register', { ...base, username: '1abc' }), 400, 'bad_username', 'username');
  assertError(await srv.api('POST', '/api/register', { ...base, username: 'ab' }), 400, 'bad_username', 'username');
  assertError(await srv.api('POST', '/api/register', { ...base, username: 'with space' }), 400, 'bad_username', 'username');
  assertError(await srv.api('POST', '/api/register', { ...base, phone: '1234' }), 400, 'bad_phone', 'phone');
  assertError(await srv.api('POST', '/api/register', { ...base, code: '12' }), 400, 'bad_code', 'code');
  assertError(await srv.api('POST', '/api/register', base), 400, 'code_expired', 'code');
});

test('a code sent to register does not log in, and a login code does not register', async () => {
  const phone = freshPhone();
  const { code } = await srv.requestCode(phone, 'register');
  assertError(await srv.api('POST', '/api/login/sms', { phone, code }), 400, 'code_expired');
  assertError(await srv.api('POST', '/api/register', { phone, code: code === '000000' ? '000001' : '000000', password: 'a-good-password' }), 400, 'code_wrong');
  assert.equal((await srv.api('POST', '/api/register', { phone, code, password: 'a-good-password' })).status, 201);

  await new Promise((res) => setTimeout(res, 2100));
  const login = await srv.requestCode(phone, 'login');
  const other = freshPhone();
  assertError(await srv.api('POST', '/api/register', { phone: other, code: login.code, password: 'a-good-password' }), 400, 'code_expired');
});

test('two registrations of one phone racing with the same code: one account, one refusal', async () => {
  const phone = freshPhone();
  const { code } = await srv.requestCode(phone, 'register');
  const answers = await Promise.all([
    srv.api('POST', '/api/register', { phone, code, password: 'a-good-password', username: 'racer_one' }),
    srv.api('POST', '/api/register', { phone, code, password: 'a-good-password', username: 'racer_two' }),
  ]);
  const statuses = answers.map((a) => a.status).sort();
  assert.equal(statuses[0], 201, JSON.stringify(answers.map((a) => a.body)));
  assert.ok([400, 409].includes(statuses[1]), JSON.stringify(answers.map((a) => a.body)));
});
