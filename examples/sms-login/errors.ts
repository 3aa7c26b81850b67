/**
 * The errors a client can meet: an HTTP status, a stable code the page switches on, a sentence that says what to
 * do, and optionally the field at fault. The web layer turns one into `{ error: { code, message, field?, ... } }`.
 *
 * Codes by status:
 *   400 bad_request, bad_phone, bad_code, bad_password, bad_username, bad_account, bad_purpose, bad_task_id,
 *       code_expired (none pending: expired, used or never sent), code_wrong (attemptsLeft)
 *   401 unauthorized (no or expired token), bad_credentials
 *   404 not_found, phone_not_registered, outbox_disabled
 *   409 phone_taken, username_taken
 *   413 too_large   415 unsupported_media_type
 *   429 code_throttled (retryAfter seconds), code_locked (too many wrong attempts: request a new code)
 *   503 unavailable (the queue or the cache cannot be reached)
 */

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.extra } };
  }
}

export function badInput(code: string, field: string, message: string): ApiError {
  return new ApiError(400, code, message, { field });
}
