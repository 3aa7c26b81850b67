/**
 * The SMS provider seam: one method, `send(to, text)`, that resolves when the provider accepted the message and throws
 * SmsSendError when it did not (the send_sms task retries those with backoff). Pick one by configuration:
 *   SMS_PROVIDER=outbox (default)  messages land in an outbox in the cache; the page's phone panel shows them
 *   SMS_PROVIDER=http              POST {"to","text"} as JSON to SMS_HTTP_URL (Bearer SMS_HTTP_TOKEN when set)
 */

export interface SmsProvider {
  readonly name: string;
  send(to: string, text: string, signal?: AbortSignal): Promise<{ messageId: string }>;
}

/** A send that did not go through; `retryable` false means retrying cannot help (e.g. the provider refused the number). */
export class SmsSendError extends Error {
  override name = 'SmsSendError';
  constructor(message: string, readonly retryable = true) {
    super(message);
  }
}

/** The text of a code message, as an SMS vendor's verification-code template would word it. */
export function codeText(code: string, ttlSeconds: number): string {
  const valid = ttlSeconds % 60 === 0 ? `${ttlSeconds / 60} minute${ttlSeconds === 60 ? '' : 's'}` : `${ttlSeconds} s`;
  return `[celeriac] Your verification code is ${code}. It is valid for ${valid}; do not share it.`;
}
