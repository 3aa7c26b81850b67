// The SMS-login app's login flows over HTTP, on the embedded default: the phone check, sending a code (queued through
// celeriac, answered before the SMS goes out), the resend interval, wrong codes and the lock, single use, the
// multi-way password login, sessions (me, logout), and the error shape of bad input.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO, startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

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
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 10, 'a message that says what to do');
  if (field) assert.equal(r.body.error.field, field);
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the phone check on blur', () => {
  test('a registered number, a free one, a malformed one, a missing one', async () => {
    assert.deepEqual((await srv.api('GET', `/api/users/check-phone?phone=${DEMO.phone}`)).body, { phone: DEMO.phone, registered: true });
    assert.deepEqual((await srv.api('GET', '/api/users/check-phone?phone=13700000001')).body, { phone: '13700000001', registered: false });
    assertError(await srv.api('GET', '/api/users/check-phone?phone=12345'), 400, 'bad_phone', 'phone');
    assertError(await srv.api('GET', '/api/users/check-phone?phone=23800138000'), 400, 'bad_phone', 'phone');
    assertError(await srv.api('GET', '/api/users/check-phone'), 400, 'bad_phone', 'phone');
  });
});

describe('mobile-code login', () => {
  test('send a code, the worker delivers it, log in with it, the session works', async () => {
    const r = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone, purpose: 'login' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.match(r.body.taskId, /^[0-9a-f-]{36}$/);
    assert.equal(r.body.resendAfter, 2);
    assert.equal(r.body.expiresIn, 30);
    const sms = await srv.nextSms(DEMO.phone);
    assert.match(sms.text, /Your verification code is \d{6}\. It is valid for 30 s/);
    const task = await srv.taskState(r.body.taskId, ['SUCCESS']);
    assert.equal(task.result.phone, DEMO.phone);
    assert.equal(task.result.provider, 'outbox');
    assert.ok(!JSON.stringify(task.result).includes(sms.code), 'the result does not repeat the code');
    assert.match(srv.proc.out, new RegExp(`Task sms_login\\.tasks\\.send_sms\\[${r.body.taskId}\\] succeeded`));

    const login = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: sms.code });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.username, DEMO.username);
    assert.match(login.body.token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(Date.parse(login.body.expiresAt) > Date.now() + 6 * 86400_000, 'a week by default');

    const me = await srv.api('GET', '/api/me', undefined, login.body.token);
    assert.equal(me.status, 200);
    assert.equal(me.body.username, DEMO.username);

    // single use: the same code again is refused
    await wait(2100);
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: sms.code }), 400, 'code_expired', 'code');
  });

  test('sending a code to a number without an account is a 404; bad input is a 400', async () => {
    assertError(await srv.api('POST', '/api/sms/send', { phone: '13700000002' }), 404, 'phone_not_registered', 'phone');
    assertError(await srv.api('POST', '/api/sms/send', { phone: '1380013800' }), 400, 'bad_phone', 'phone');
    assertError(await srv.api('POST', '/api/sms/send', { phone: 13800138000 }), 400, 'bad_phone', 'phone');
    assertError(await srv.api('POST', '/api/sms/send', {}), 400, 'bad_phone', 'phone');
    assertError(await srv.api('POST', '/api/sms/send', { phone: DEMO.phone, purpose: 'reset' }), 400, 'bad_purpose', 'purpose');
  });

  test('one code per phone per interval: a second send is a 429 with Retry-After; after it, a new code replaces the old', async () => {
    await wait(2100);
    const first = await srv.requestCode(DEMO.phone);
    const again = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
    assertError(again, 429, 'code_throttled', 'phone');
    assert.ok(again.body.error.retryAfter >= 1 && again.body.error.retryAfter <= 2, JSON.stringify(again.body));
    assert.equal(again.headers.get('retry-after'), String(again.body.error.retryAfter));
    // the throttle is per phone, whatever the purpose
    assertError(await srv.api('POST', '/api/sms/send', { phone: DEMO.phone, purpose: 'register' }), 409, 'phone_taken');

    await wait(2100);
    const second = await srv.requestCode(DEMO.phone);
    if (first.code !== second.code) { // one chance in a million that they are equal
      assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: first.code }), 400, 'code_wrong');
    }
    const ok = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: second.code });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test('wrong codes count down, then lock the code: even the right one is refused until a new code is sent', async () => {
    await wait(2100);
    const { code } = await srv.requestCode(DEMO.phone);
    const wrong = code === '000000' ? '111111' : '000000';
    for (let left = 4; left >= 1; left--) {
      const r = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: wrong });
      assertError(r, 400, 'code_wrong', 'code');
      assert.equal(r.body.error.attemptsLeft, left);
    }
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: wrong }), 429, 'code_locked', 'code');
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code }), 400, 'code_expired', 'code');

    await wait(2100);
    const fresh = await srv.requestCode(DEMO.phone);
    const ok = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: fresh.code });
    assert.equal(ok.status, 200, 'a new code resets the attempts');
  });

  test('parallel guesses cannot exceed the attempt limit, and a code is used by one request only', async () => {
    await wait(2100);
    const { code } = await srv.requestCode(DEMO.phone);
    const answers = await Promise.all(Array.from({ length: 3 }, () => srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 400, 400]);

    await wait(2100);
    await srv.requestCode(DEMO.phone);
    const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: String(900000 + i) })));
    const wrongs = guesses.filter((g) => g.body?.error?.code === 'code_wrong').length;
    assert.ok(wrongs <= 4, `at most 4 wrong-code answers before the lock, got ${wrongs}`);
  });

  test('a login code must be 6 digits; the phone must be valid', async () => {
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: '12345' }), 400, 'bad_code', 'code');
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: 'abcdef' }), 400, 'bad_code', 'code');
    assertError(await srv.api('POST', '/api/login/sms', { phone: DEMO.phone }), 400, 'bad_code', 'code');
    assertError(await srv.api('POST', '/api/login/sms', { phone: 'x', code: '123456' }), 400, 'bad_phone', 'phone');
    assertError(await srv.api('POST', '/api/login/sms', { phone: '13700000003', code: '123456' }), 400, 'code_expired', 'code');
  });
});

describe('multi-way password login', () => {
  for (const [kind, account] of [['username', DEMO.username], ['phone', DEMO.phone], ['email', DEMO.email], ['EMAIL in capitals', DEMO.email.toUpperCase()]]) {
    test(`by ${kind}`, async () => {
      const r = await srv.api('POST', '/api/login/password', { account, password: DEMO.password });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.username, DEMO.username);
      assert.match(r.body.token, /^[A-Za-z0-9_-]{43}$/);
    });
  }

  test('a wrong password and an unknown account get the same 401', async () => {
    const wrong = await srv.api('POST', '/api/login/password', { account: DEMO.username, password: 'not-the-password' });
    const unknown = await srv.api('POST', '/api/login/password', { account: 'nobody_here', password: 'not-the-password' });
    assertError(wrong, 401, 'bad_credentials');
    assertError(unknown, 401, 'bad_credentials');
    assert.deepEqual(wrong.body, unknown.body);
  });

  test('bad input', async () => {
    assertError(await srv.api('POST', '/api/login/password', { account: '', password: 'x' }), 400, 'bad_account', 'account');
    assertError(await srv.api('POST', '/api/login/password', { account: '12', password: 'x' }), 400, 'bad_account', 'account');
    assertError(await srv.api('POST', '/api/login/password', { account: 'a b c', password: 'x' }), 400, 'bad_account', 'account');
    assertError(await srv.api('POST', '/api/login/password', { account: DEMO.username }), 400, 'bad_password', 'password');
    assertError(await srv.api('POST', '/api/login/password', { account: DEMO.username, password: 12345678 }), 400, 'bad_password', 'password');
  });
});

describe('sessions', () => {
  test('no token, a malformed one, an unknown one: 401', async () => {
    assertError(await srv.api('GET', '/api/me'), 401, 'unauthorized');
    assertError(await srv.api('GET', '/api/me', undefined, 'short'), 401, 'unauthorized');
    assertError(await srv.api('GET', '/api/me', undefined, 'A'.repeat(43)), 401, 'unauthorized');
  });

  test('logout revokes the token at once', async () => {
    const { body } = await srv.api('POST', '/api/login/password', { account: DEMO.username, password: DEMO.password });
    assert.equal((await srv.api('GET', '/api/me', undefined, body.token)).status, 200);
    assert.equal((await srv.api('POST', '/api/logout', undefined, body.token)).status, 204);
    assertError(await srv.api('GET', '/api/me', undefined, body.token), 401, 'unauthorized');
    assertError(await srv.api('POST', '/api/logout', undefined, body.token), 401, 'unauthorized');
  });
});

describe('the error shape of requests the app cannot read', () => {
  test('invalid JSON, not an object, another content type, too large, unknown route, bad task id', async () => {
    assertError(await srv.api('POST', '/api/login/password', '{"account":'), 400, 'bad_request', 'body');
    assertError(await srv.api('POST', '/api/login/password', '[1,2]'), 400, 'bad_request', 'body');
    assertError(await srv.api('POST', '/api/login/password', 'account=alice', undefined,
      { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    assertError(await srv.api('POST', '/api/login/password', { account: 'a'.repeat(20_000), password: 'x' }), 413, 'too_large');
    assertError(await srv.api('GET', '/api/nothing-here'), 404, 'not_found');
    assertError(await srv.api('GET', '/api/sms/tasks/not-a-uuid'), 400, 'bad_task_id', 'id');
    const unknown = await srv.api('GET', '/api/sms/tasks/00000000-0000-4000-8000-000000000000');
    assert.deepEqual(unknown.body, { id: '00000000-0000-4000-8000-000000000000', state: 'PENDING' });
  });

  test('API answers are not cached by the browser; the page is served with a strict CSP', async () => {
    const r = await srv.api('GET', '/api/banners');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const page = await fetch(srv.url + '/');
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await page.text(), /id="login-dialog"/);
    assert.equal((await fetch(srv.url + '/static/app.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await fetch(srv.url + '/static/../server.ts')).status, 404);
  });
});
