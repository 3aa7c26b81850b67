// The SMS provider plugged in by configuration (SMS_PROVIDER=http) against a fake provider in this test process:
// what it receives, a send answered before the SMS goes out, transient failures retried with backoff (RETRY, then
// SUCCESS or FAILURE after the last retry), a definitive refusal failing at once, and the state read by task id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { freshPhone, startSmsLogin, type SmsLoginServer } from './sms-login.harness.ts';

interface Received {
  at: number;
  auth: string | undefined;
  body: { to: string; text: string };
}

/** phone -> how the fake provider answers each successive request for it */
const script = new Map<string, Array<{ status: number; delayMs?: number; hold?: Promise<void> }>>();
const received = new Map<string, Received[]>();
let provider: Server;
let srv: SmsLoginServer;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => resolve(data));
  });
}

before(async () => {
  provider = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as Received['body'];
    const list = received.get(body.to) ?? [];
    list.push({ at: Date.now(), auth: req.headers.authorization, body });
    received.set(body.to, list);
    const steps = script.get(body.to) ?? [];
    const step = steps.length > 1 ? steps.shift()! : steps[0] ?? { status: 200 };
    if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
    if (step.hold) await step.hold;
    res.writeHead(step.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(step.status < 300 ? { messageId: `msg-${list.length}` } : { error: `status ${step.status}` }));
  });
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  const port = (provider.address() as { port: number }).port;
  srv = await startSmsLogin({
    SMS_PROVIDER: 'http',
    SMS_HTTP_URL: `http://127.0.0.1:${port}/sms`,
    SMS_HTTP_TOKEN: 'provider-secret',
    SMS_RETRY_BACKOFF: '0.2',
    SMS_MAX_RETRIES: '2',
  });
});

after(async () => {
  assert.equal(await srv.stop(), 0, srv.proc.out);
  provider.close();
});

async function send(phone: string): Promise<string> {
  const r = await srv.api('POST', '/api/sms/send', { phone, purpose: 'register' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.taskId;
}

test('the provider gets the phone and the text as JSON with the bearer token; the task succeeds with its message id', async () => {
  const phone = freshPhone();
  const id = await send(phone);
  const done = await srv.taskState(id, ['SUCCESS', 'FAILURE']);
  assert.deepEqual(done, { id, state: 'SUCCESS', result: { phone, provider: 'http', messageId: 'msg-1' } });
  const [got] = received.get(phone)!;
  assert.equal(got.auth, 'Bearer provider-secret');
  assert.equal(got.body.to, phone);
  assert.match(got.body.text, /Your verification code is \d{6}/);
});

test('the HTTP answer does not wait for the SMS: it returns while the provider is still busy', async (t) => {
  const phone = freshPhone();
  // the provider holds its answer until the test lets it go: the HTTP answer must come first (an order, not a time)
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  script.set(phone, [{ status: 200, hold }]);
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<never>((_, reject) => (timer = setTimeout(
    () => reject(new Error('no HTTP answer within 10 s while the provider was held: the answer waits for the SMS')), 10_000)));
  try {
    const id = await Promise.race([send(phone), waited]);
    t.diagnostic(`answered in ${Date.now() - t0} ms`);
    assert.notEqual((await srv.api('GET', `/api/sms/tasks/${id}`)).body.state, 'SUCCESS');
    release();
    await srv.taskState(id, ['SUCCESS']);
  } finally {
    clearTimeout(timer);
    release();
  }
});

test('a transient failure (503) is retried with backoff and then succeeds', async () => {
  const phone = freshPhone();
  script.set(phone, [{ status: 503 }, { status: 200 }]);
  const id = await send(phone);
  const retry = await srv.taskState(id, ['RETRY', 'SUCCESS']);
  if (retry.state === 'RETRY') {
    assert.equal(retry.error.type, 'SmsSendError');
    assert.match(retry.error.message, /SMS provider answered 503/);
  }
  assert.equal((await srv.taskState(id, ['SUCCESS', 'FAILURE'])).state, 'SUCCESS');
  assert.equal(received.get(phone)!.length, 2);
});

test('a provider that keeps failing: two retries after backoff delays, then FAILURE visible through the task id', async () => {
  const phone = freshPhone();
  script.set(phone, [{ status: 500 }]);
  const id = await send(phone);
  const failed = await srv.taskState(id, ['FAILURE', 'SUCCESS']);
  assert.equal(failed.state, 'FAILURE');
  assert.equal(failed.error.type, 'SmsSendError');
  assert.match(failed.error.message, /SMS provider answered 500/);
  const attempts = received.get(phone)!;
  assert.equal(attempts.length, 3, 'the first try and SMS_MAX_RETRIES=2 retries');
  const delays = [...srv.proc.out.matchAll(new RegExp(`send_sms\\[${id}\\] retry: Retry in ([\\d.e-]+)s`, 'g'))].map((m) => Number(m[1]));
  assert.equal(delays.length, 2, srv.proc.out);
  // exponential backoff with full jitter: retry n waits a uniform draw in [0, 0.2 s * 2^n]
  assert.ok(delays[0] <= 0.2 && delays[1] <= 0.4, JSON.stringify(delays));
  assert.match(srv.proc.out, new RegExp(`send_sms\\[${id}\\] raised`, 'i'));
});

test('a definitive refusal (400) is not retried', async () => {
  const phone = freshPhone();
  script.set(phone, [{ status: 400 }]);
  const id = await send(phone);
  const failed = await srv.taskState(id, ['FAILURE', 'SUCCESS']);
  assert.equal(failed.state, 'FAILURE');
  assert.match(failed.error.message, /answered 400/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(received.get(phone)!.length, 1);
});

test('with a real provider there is no outbox to show', async () => {
  const r = await srv.api('GET', '/api/outbox');
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'outbox_disabled');
});
