// `npm start` as a newcomer runs it: the whole system in one process, the URL printed, Ctrl-C stopping it cleanly;
// a bad setting refused with a clear message; the celeriac app's configuration (time zone, beat, retries); and the
// same app split into processes on the embedded files (web app alone +
// `celeriac -A examples/sms-login/celery_task worker -B`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IntervalSchedule } from 'celeriac';
import { celeriac, exec, Proc, ROOT, run } from '../helpers/processes.ts';
import { DEMO, FAST, SERVER, startSmsLogin } from './sms-login.harness.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sms-login-server-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const baseEnv = (data: string): Record<string, string> => ({
  ...FAST, PORT: '0', SMS_LOGIN_DATA_DIR: data, CELERIAC_BROKER_URL: '', CELERIAC_RESULT_BACKEND: '', SMS_LOGIN_CACHE_URL: '',
});

test('package.json: `npm start` runs the SMS-login app; the quick-start menu stays as `npm run menu`', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.start, `node --import tsx ${SERVER}`);
  assert.equal(pkg.scripts.menu, 'node --import tsx examples/quickstart/run.ts');
});

test('npm start prints the URL, serves the page, and Ctrl-C (SIGINT to the process group) stops it cleanly', async () => {
  // detached: its own process group, so the signal reaches npm and the server as a terminal's Ctrl-C does
  const child = spawn('npm', ['start', '--silent'], {
    cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...baseEnv(join(dir, 'npm')) },
  });
  const proc = new Proc(child);
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  try {
    await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, 30_000);
    const url = /listening on (http:\/\/\S+)/.exec(proc.out)![1];
    assert.match(proc.out, /web app \+ worker \+ beat running/);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>celeriac · SMS login<\/title>/);
    group('SIGINT');
    const timer = setTimeout(() => group('SIGKILL'), 20_000);
    const code = await proc.exited;
    clearTimeout(timer);
    // npm itself ends by the SIGINT it got (-1 here), as programs do on Ctrl-C; the server's own exit is tested below
    assert.ok(code === 0 || code === -1, `npm exited ${code}:\n${proc.out}`);
    assert.match(proc.out, /SIGINT received, shutting down/);
    assert.match(proc.out, /beat: Released the leader lock/);
    assert.match(proc.out, /sms-login: stopped\./);
    await assert.rejects(fetch(url), 'nothing listens any more');
  } finally {
    group('SIGKILL');
  }
});

test('the server on SIGINT and on SIGTERM: warm stop, exit 0', async () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const srv = await startSmsLogin(baseEnv(join(dir, signal)), join(dir, signal));
    const sent = await srv.api('POST', '/api/sms/send', { phone: DEMO.phone });
    assert.equal(sent.status, 202);
    assert.equal(await srv.stop(signal, true), 0, srv.proc.out);
    assert.match(srv.proc.out, new RegExp(`${signal} received, shutting down[\\s\\S]*sms-login: stopped\\.`));
  }
});

test('a bad setting stops the start with a message that names it (exit 2)', async () => {
  const r = await exec(run(process.execPath, ['--import', 'tsx', SERVER], { ...baseEnv(join(dir, 'bad')), SMS_PROVIDER: 'http' }));
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /SMS_PROVIDER=http needs SMS_HTTP_URL/);
  const r2 = await exec(run(process.execPath, ['--import', 'tsx', SERVER], { ...baseEnv(join(dir, 'bad')), SMS_LOGIN_CODE_TTL: 'soon' }));
  assert.equal(r2.code, 2, r2.out);
  assert.match(r2.out, /SMS_LOGIN_CODE_TTL must be an integer >= 1, got "soon"/);
});

test('the celeriac app: Shanghai time, enableUtc false, update_banner every minute, send_sms retrying', async () => {
  const { app } = await import('../../examples/sms-login/celery_task/celery.ts');
  const { sendSms, updateBanner } = await import('../../examples/sms-login/celery_task/tasks.ts');
  assert.equal(app.conf.timezone, 'Asia/Shanghai');
  assert.equal(app.conf.enableUtc, false);
  assert.equal(app.conf.taskDefaultQueue, 'sms_login');
  const entry = app.conf.beatSchedule.update_banner;
  assert.equal(entry.task, 'sms_login.tasks.update_banner');
  assert.ok(entry.schedule instanceof IntervalSchedule);
  assert.equal(entry.schedule.seconds, 60);
  assert.equal(entry.schedule.describe(), 'every minute');
  assert.equal(sendSms.name, 'sms_login.tasks.send_sms');
  assert.equal(updateBanner.name, 'sms_login.tasks.update_banner');
  assert.equal(typeof sendSms.options.autoretryFor, 'function');
  assert.ok(sendSms.options.retryBackoff);
  await app.close();
});

test('split into processes on the embedded files: the web app alone queues, a separate worker -B delivers and refreshes', async () => {
  const data = join(dir, 'split');
  const env = { ...baseEnv(data), SMS_LOGIN_WORKER: '0', SMS_LOGIN_BEAT: '0', SMS_LOGIN_BANNER_EVERY: '1' };
  const web = await startSmsLogin(env, data);
  let worker: Proc | null = null;
  try {
    assert.match(web.proc.out, /sms-login: web app running;/);
    const sent = await web.api('POST', '/api/sms/send', { phone: DEMO.phone });
    assert.equal(sent.status, 202);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await web.api('GET', `/api/sms/tasks/${sent.body.taskId}`)).body.state, 'PENDING', 'no worker yet');
    const first = await web.api('GET', '/api/banners');

    worker = celeriac(['-A', 'examples/sms-login/celery_task', 'worker', '-B', '-l', 'info'], web.env);
    await worker.waitFor(' ready.');
    const sms = await web.nextSms(DEMO.phone);
    assert.equal((await web.taskState(sent.body.taskId, ['SUCCESS'])).result.phone, DEMO.phone);
    const login = await web.api('POST', '/api/login/sms', { phone: DEMO.phone, code: sms.code });
    assert.equal(login.status, 200, JSON.stringify(login.body));

    const db = new Database(join(data, 'app.db'));
    db.prepare('INSERT INTO banners (title, position, updated_at) VALUES (?, ?, ?)').run('From the worker process', 9, Date.now());
    db.close();
    const deadline = Date.now() + 15_000;
    let titles: string[] = [];
    while (Date.now() < deadline) {
      titles = (await web.api('GET', '/api/banners')).body.banners.map((b: { title: string }) => b.title);
      if (titles.includes('From the worker process')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(titles.includes('From the worker process'), `${JSON.stringify(titles)} (was ${first.body.banners.length})`);
    assert.match(worker.out, /Task sms_login\.tasks\.update_banner\[[0-9a-f-]{36}\] succeeded/);
  } finally {
    worker?.kill('SIGTERM');
    await worker?.exited;
    assert.equal(await web.stop('SIGTERM', true), 0, web.proc.out);
  }
});
