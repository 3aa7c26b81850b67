/**
 * Input checks with one clear 400 each. Formats: a mainland China mobile number (11 digits, 1[3-9]…), a 6-digit
 * code; a username starts with a letter; a password is 8–64 characters.
 * Each checker takes the parsed body's field as `unknown` and returns the clean value or throws ApiError.
 */
import { badInput } from './errors.ts';

export const PHONE_RE = /^1[3-9]\d{9}$/;
export const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{1,63}$/;
export const USERNAME_RE = /^[A-Za-z][A-Za-z0-9_]{2,31}$/;
export const CODE_LENGTH = 6;

function text(value: unknown, field: string, code: string, what: string): string {
  if (value === undefined || value === null || value === '') throw badInput(code, field, `${what} is required.`);
  if (typeof value !== 'string') throw badInput(code, field, `${what} must be a string.`);
  return value.trim();
}

export function phone(value: unknown, field = 'phone'): string {
  const v = text(value, field, 'bad_phone', 'A phone number');
  if (!PHONE_RE.test(v)) {
    throw badInput('bad_phone', field, 'Enter an 11-digit mobile number starting with 1, e.g. 13800138000.');
  }
  return v;
}

export function code(value: unknown, field = 'code'): string {
  const v = text(value, field, 'bad_code', 'The code');
  if (!new RegExp(`^\\d{${CODE_LENGTH}}$`).test(v)) {
    throw badInput('bad_code', field, `The code is the ${CODE_LENGTH} digits from the SMS.`);
  }
  return v;
}

export function password(value: unknown, field = 'password'): string {
  if (value === undefined || value === null || value === '') throw badInput('bad_password', field, 'A password is required.');
  if (typeof value !== 'string') throw badInput('bad_password', field, 'The password must be a string.');
  if (value.length < 8 || value.length > 64) {
    throw badInput('bad_password', field, 'The password must be 8 to 64 characters long.');
  }
  return value;
}

/** An optional username: undefined when absent. */
export function username(value: unknown, field = 'username'): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !USERNAME_RE.test(value.trim())) {
    throw badInput('bad_username', field,
      'A username is 3 to 32 letters, digits or _, starting with a letter.');
  }
  return value.trim();
}

/** What a password login names: a phone, an email or a username; kind is decided by its shape. */
export function account(value: unknown, field = 'account'): { kind: 'phone' | 'email' | 'username'; value: string } {
  const v = text(value, field, 'bad_account', 'A username, phone number or email');
  if (PHONE_RE.test(v)) return { kind: 'phone', value: v };
  if (EMAIL_RE.test(v)) return { kind: 'email', value: v };
  if (USERNAME_RE.test(v)) return { kind: 'username', value: v };
  throw badInput('bad_account', field, 'Enter your username, your 11-digit phone number or your email.');
}

export type Purpose = 'login' | 'register';
export function purpose(value: unknown, field = 'purpose'): Purpose {
  if (value === undefined || value === null || value === '') return 'login';
  if (value !== 'login' && value !== 'register') {
    throw badInput('bad_purpose', field, 'purpose is "login" or "register".');
  }
  return value;
}

const TASK_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function taskId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !TASK_ID_RE.test(value)) throw badInput('bad_task_id', field, 'A task id is a UUID.');
  return value.toLowerCase();
}

/** The parsed JSON body as an object, or a 400 that says so. */
export function body(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badInput('bad_request', 'body', 'Send a JSON object (Content-Type: application/json).');
  }
  return value as Record<string, unknown>;
}
