/**
 * SMS verification codes: issue, throttle, verify, consume. All state is in the cache, so any process can verify a
 * code another one issued.
 *
 * Keys (under the cache's prefix and version):
 *   sms_throttle:<phone>          "1", TTL resendSeconds  — one code per phone per interval (SET NX: atomic)
 *   sms_code:<purpose>:<phone>    the 6 digits, TTL codeTtlSeconds
 *   sms_attempts:<purpose>:<phone> counter, TTL codeTtlSeconds — every check counts, before comparing
 * Rules:
 * - A new code replaces the old one and resets the attempts. Login and registration codes are apart (a code sent
 *   to register cannot log in).
 * - Each check first INCRs the attempts counter, so concurrent guesses cannot exceed maxAttempts; past it the code is
 *   deleted (locked) and a new one must be requested.
 * - Comparison is constant-time over SHA-256 digests (equal lengths whatever was typed).
 * - Success deletes the code; only the request whose delete removed it wins, so a code is used once even when two
 *   requests race with it.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { Cache } from '../cache/cache.ts';
import { ApiError } from '../errors.ts';
import { CODE_LENGTH, type Purpose } from '../validate.ts';

export interface CodePolicy {
  codeTtlSeconds: number;
  resendSeconds: number;
  maxAttempts: number;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function newCode(): string {
  return String(randomInt(0, 10 ** CODE_LENGTH)).padStart(CODE_LENGTH, '0');
}

export class CodeService {
  constructor(private readonly cache: Cache, readonly policy: CodePolicy) {}

  /**
   * Reserve the send slot for this phone and store a new code; throws code_throttled (with retryAfter seconds)
   * when a code went out less than resendSeconds ago. Returns the code, to be sent by the caller.
   */
  async issue(phone: string, purpose: Purpose): Promise<string> {
    if (!(await this.cache.add(`sms_throttle:${phone}`, 1, this.policy.resendSeconds))) {
      const retryAfter = Math.max(1, (await this.cache.ttl(`sms_throttle:${phone}`)) ?? this.policy.resendSeconds);
      throw new ApiError(429, 'code_throttled', `A code was sent to this number just now; ask again in ${retryAfter} s.`,
        { field: 'phone', retryAfter });
    }
    const code = newCode();
    await this.cache.delete(`sms_attempts:${purpose}:${phone}`);
    await this.cache.set(`sms_code:${purpose}:${phone}`, code, this.policy.codeTtlSeconds);
    return code;
  }

  /** Give the send slot back (the code could not be queued), so the user can try again at once. */
  async release(phone: string, purpose: Purpose): Promise<void> {
    await this.cache.delete(`sms_throttle:${phone}`);
    await this.cache.delete(`sms_code:${purpose}:${phone}`);
  }

  /** Check and consume; throws code_expired, code_wrong (attemptsLeft) or code_locked. */
  async verify(phone: string, purpose: Purpose, typed: string): Promise<void> {
    const codeKey = `sms_code:${purpose}:${phone}`;
    const attemptsKey = `sms_attempts:${purpose}:${phone}`;
    const stored = await this.cache.get<string>(codeKey);
    if (stored === null) {
      throw new ApiError(400, 'code_expired', 'No valid code for this number: it expired or was used. Send a new one.', { field: 'code' });
    }
    const attempts = await this.cache.incr(attemptsKey, 1, this.policy.codeTtlSeconds);
    if (attempts > this.policy.maxAttempts) {
      await this.cache.delete(codeKey);
      throw new ApiError(429, 'code_locked', 'Too many wrong codes: this code is locked. Send a new one.', { field: 'code' });
    }
    if (!timingSafeEqual(digest(typed), digest(String(stored)))) {
      const attemptsLeft = this.policy.maxAttempts - attempts;
      if (attemptsLeft <= 0) {
        await this.cache.delete(codeKey);
        throw new ApiError(429, 'code_locked', 'Too many wrong codes: this code is locked. Send a new one.', { field: 'code' });
      }
      throw new ApiError(400, 'code_wrong', `Wrong code; ${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left.`,
        { field: 'code', attemptsLeft });
    }
    if (!(await this.cache.delete(codeKey))) {
      throw new ApiError(400, 'code_expired', 'No valid code for this number: it expired or was used. Send a new one.', { field: 'code' });
    }
    await this.cache.delete(attemptsKey);
  }
}
