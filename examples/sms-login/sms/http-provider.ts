/**
 * A real provider over HTTP: POST `{"to","text"}` as JSON to a URL, with `Authorization: Bearer <token>` when one is
 * configured, and expect a 2xx JSON answer (its `id` or `messageId`, if any, is the message id).
 * 5xx, 429, timeouts and connection failures are retryable SmsSendErrors; other 4xx are not (the request is wrong,
 * retrying will not fix it). Adapt `send` to a vendor's API (Tencent Cloud, Twilio…) by keeping this contract.
 */
import { SmsSendError, type SmsProvider } from './provider.ts';

const TIMEOUT_MS = 5_000;

export class HttpSmsProvider implements SmsProvider {
  readonly name = 'http';
  constructor(private readonly url: string, private readonly token: string | null = null) {}

  async send(to: string, text: string, signal?: AbortSignal): Promise<{ messageId: string }> {
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        body: JSON.stringify({ to, text }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new SmsSendError(`SMS provider unreachable at ${new URL(this.url).origin}: ${(err as Error).message}`);
    }
    const body = await res.text();
    if (!res.ok) {
      const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
      throw new SmsSendError(`SMS provider answered ${res.status}: ${body.slice(0, 200)}`, retryable);
    }
    let id: unknown;
    try {
      const parsed = JSON.parse(body) as { id?: unknown; messageId?: unknown };
      id = parsed.messageId ?? parsed.id;
    } catch {
      id = undefined;
    }
    return { messageId: typeof id === 'string' || typeof id === 'number' ? String(id) : 'unknown' };
  }
}
