// Time limits, shortened by configuration instead of waited out: a code expires (SMS_LOGIN_CODE_TTL), a token
// expires (SMS_LOGIN_TOKEN_TTL) and the session then answers 401, and the resend interval ends (SMS_LOGIN_RESEND_SECONDS).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO, startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

let srv: SmsLoginServer;
before(async () => {
  srv = await startSmsLogin({ SMS_LOGIN_CODE_TTL: '2', SMS_LOGIN_TOKEN_TTL: '2', SMS_LOGIN_RESEND_SECONDS: '1' });
});
after(async () => {
  assert.equal(await srv.stop(), 0, srv.proc.out);
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a code is refused once it expired, and the message says how long it was valid', async () => {
  const r = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
  assert.equal(r.body.expiresIn, 2);
  const sms = await srv.nextSms(DEMO.phone);
  assert.match(sms.text, /valid for 2 s/);
  await wait(2300);
  const late = await srv.api('POST', '/api/login/sms', { phone: DEMO.phone, code: sms.code });
  assert.equal(late.status, 400);
  assert.equal(late.body.error.code, 'code_expired');
});

test('a token stops working when it expires; the resend interval ends by itself', async () => {
  const first = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
  assert.equal(first.status, 202, JSON.stringify(first.body));
  assert.equal((await srv.api('POST', '/api/sms/send', { phone: DEMO.phone })).status, 429);
  await wait(1100);
  const second = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
  assert.equal(second.status, 202, JSON.stringify(second.body));

  const login = await srv.api('POST', '/api/login/password', { account: DEMO.username, password: DEMO.password });
  assert.ok(Date.parse(login.body.expiresAt) - Date.now() <= 2000);
  assert.equal((await srv.api('GET', '/api/me', undefined, login.body.token)).status, 200);
  await wait(2300);
  const me = await srv.api('GET', '/api/me', undefined, login.body.token);
  assert.equal(me.status, 401);
  assert.equal(me.body.error.code, 'unauthorized');
});
