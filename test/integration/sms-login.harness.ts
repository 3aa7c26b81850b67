/**
 * The SMS-login app as its tests meet it: `examples/sms-login/server.ts` in a real child process (web app, worker and
 * beat, as `npm start` runs them) on PORT=0 and a temp data directory, with the waits shortened by its settings, and
 * a small JSON client. Every server started here is stopped (SIGTERM) and its directory removed by `stop()`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Proc } from '../helpers/processes.ts';

export const SERVER = 'examples/sms-login/server.ts';
export const DEMO = { username: 'alice', phone: '13800138000', email: 'alice@example.com', password: 'celeriac-demo' };

/** Fast defaults for tests: a 2 s resend interval, 30 s codes, 5 attempts, beat every 60 s unless set. */
export const FAST: Record<string, string> = {
  SMS_LOGIN_RESEND_SECONDS: '2',
  SMS_LOGIN_CODE_TTL: '30',
  SMS_LOGIN_MAX_ATTEMPTS: '5',
  SMS_RETRY_BACKOFF: '0.05',
  SMS_MAX_RETRIES: '2',
};

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export class SmsLoginServer {
  constructor(readonly proc: Proc, readonly url: string, readonly dir: string, readonly env: Record<string, string>) {}

  async api(method: string, path: string, body?: unknown, token?: string, extraHeaders: Record<string, string> = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.url + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /** The newest outbox message to `phone` that is not in `seen` (ids), waited for; returns its code too. */
  async nextSms(phone: string, seen: Set<string> = new Set(), timeoutMs = 15_000): Promise<{ id: string; code: string; text: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.api('GET', `/api/outbox?phone=${phone}`);
      const m = (r.body?.messages ?? []).find((x: { id: string }) => !seen.has(x.id));
      if (m) {
        seen.add(m.id);
        return { id: m.id, text: m.text, code: /\b(\d{6})\b/.exec(m.text)![1] };
      }
      if (Date.now() > deadline) throw new Error(`no SMS to ${phone} within ${timeoutMs} ms; server output:\n${this.proc.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Ask for a code and read it from the outbox. */
  async requestCode(phone: string, purpose: 'login' | 'register' = 'login'): Promise<{ code: string; taskId: string }> {
    // what the outbox holds already is not this request's SMS, whoever read it (the worker may not have sent it yet)
    const before = await this.api('GET', `/api/outbox?phone=${phone}`);
    for (const m of before.body?.messages ?? []) this.seen.add(m.id);
    const r = await this.api('POST', '/api/sms/send', { phone, purpose });
    if (r.status !== 202) throw new Error(`send code to ${phone}: ${r.status} ${JSON.stringify(r.body)}`);
    const sms = await this.nextSms(phone, this.seen);
    return { code: sms.code, taskId: r.body.taskId };
  }

  private readonly seen = new Set<string>();

  /** A send_sms task's state once it is one of `states`. */
  async taskState(id: string, states: string[], timeoutMs = 20_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.api('GET', `/api/sms/tasks/${id}`);
      if (states.includes(r.body?.state)) return r.body;
      if (Date.now() > deadline) throw new Error(`task ${id} is ${JSON.stringify(r.body)}, not ${states.join('/')}; output:\n${this.proc.out}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** SIGTERM (or `signal`), wait for the exit; resolves with the exit code. Removes the data directory. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', keepDir = false): Promise<number | null> {
    if (this.proc.child.exitCode === null && this.proc.child.signalCode === null) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    const code = await this.proc.exited;
    clearTimeout(timer);
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

/** Start the app; `env` adds to (and overrides) the fast test defaults. */
export async function startSmsLogin(env: Record<string, string> = {}, dir?: string): Promise<SmsLoginServer> {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'sms-login-'));
  const full: Record<string, string> = {
    PORT: '0',
    SMS_LOGIN_DATA_DIR: dataDir,
    // never inherit a developer's broker: the embedded default, inside the temp directory
    CELERIAC_BROKER_URL: '',
    CELERIAC_RESULT_BACKEND: '',
    SMS_LOGIN_CACHE_URL: '',
    ...FAST,
    ...env,
  };
  const proc = run(process.execPath, ['--import', 'tsx', SERVER], full);
  try {
    await proc.waitFor(/listening on http:\/\/\S+/, 30_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  const url = /listening on (http:\/\/\S+)/.exec(proc.out)![1];
  return new SmsLoginServer(proc, url, dataDir, full);
}

/** A phone number no other test uses (13 9xx xxx xxxx). */
let serial = Math.floor(Math.random() * 1e6);
export function freshPhone(): string {
  serial = (serial + 1) % 1e8;
  return `139${String(serial).padStart(8, '0')}`;
}
