/**
 * The example's settings (the counterpart of a Django project's settings.py): read once from the environment,
 * checked, frozen.
 * Every process of the system (the web app, an embedded or separate worker, beat) reads the same variables, so
 * they agree on where users, the cache and the queues live.
 *
 * Defaults are production values (a code lives 5 minutes, one per phone per 60 s, 5 attempts);
 * tests shorten them through the same variables instead of sleeping.
 */
import { resolve } from 'node:path';

export type SmsProviderKind = 'outbox' | 'http';

export interface Settings {
  host: string;
  /** 0 picks a free port; the real URL is printed. */
  port: number;
  /** Where the embedded files live: app.db (users, banners), cache.db, celeriac.db (queues, results, beat). */
  dataDir: string;
  dbPath: string;
  /** redis://… or sqlite://… (the key-value store behind the cache, the tokens, the codes and the outbox). */
  cacheUrl: string;
  cachePrefix: string;
  cacheVersion: number;
  /** The most connections the pool opens (Redis; the SQLite store is one connection per process). */
  poolSize: number;
  codeTtlSeconds: number;
  resendSeconds: number;
  maxCodeAttempts: number;
  tokenTtlSeconds: number;
  bannerEverySeconds: number;
  smsProvider: SmsProviderKind;
  smsHttpUrl: string | null;
  smsHttpToken: string | null;
  /** Backoff factor in seconds for a failed send (retries after ~1 s, 2 s, 4 s … with jitter). */
  smsRetryBackoff: number;
  smsMaxRetries: number;
  /** Run the worker and beat inside the web process (`npm start`); 0 when they run as `celeriac worker -B`. */
  embedWorker: boolean;
  embedBeat: boolean;
  /** Create the demo user and banners on first start. */
  seed: boolean;
  logLevel: 'debug' | 'info' | 'warning' | 'error';
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function num(env: Env, name: string, fallback: number, min: number, integer = true): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new SettingsError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new SettingsError(`${name} must be 1 or 0, got ${JSON.stringify(raw)}`);
}

export function loadSettings(env: Env = process.env): Settings {
  const dataDir = resolve(str(env, 'SMS_LOGIN_DATA_DIR') ?? '.celeriac/sms-login');
  const broker = str(env, 'CELERIAC_BROKER_URL');
  // On Redis when the broker is; on an embedded SQLite file otherwise. SMS_LOGIN_CACHE_URL overrides both.
  const cacheUrl = str(env, 'SMS_LOGIN_CACHE_URL') ??
    (broker && /^rediss?:/i.test(broker) ? broker : `sqlite:///${resolve(dataDir, 'cache.db')}`);
  if (!/^(rediss?|sqlite):\/\//i.test(cacheUrl)) {
    throw new SettingsError(`SMS_LOGIN_CACHE_URL must be redis://… or sqlite://…, got ${JSON.stringify(cacheUrl)}`);
  }
  const provider = (str(env, 'SMS_PROVIDER') ?? 'outbox').toLowerCase();
  if (provider !== 'outbox' && provider !== 'http') {
    throw new SettingsError(`SMS_PROVIDER must be "outbox" or "http", got ${JSON.stringify(provider)}`);
  }
  const httpUrl = str(env, 'SMS_HTTP_URL') ?? null;
  if (provider === 'http' && !httpUrl) throw new SettingsError('SMS_PROVIDER=http needs SMS_HTTP_URL (where to POST messages)');
  const logLevel = (str(env, 'SMS_LOGIN_LOG_LEVEL') ?? 'info').toLowerCase();
  if (!['debug', 'info', 'warning', 'error'].includes(logLevel)) {
    throw new SettingsError(`SMS_LOGIN_LOG_LEVEL must be debug, info, warning or error, got ${JSON.stringify(logLevel)}`);
  }
  return Object.freeze({
    host: str(env, 'HOST') ?? '127.0.0.1',
    port: num(env, 'PORT', 8000, 0),
    dataDir,
    dbPath: resolve(str(env, 'SMS_LOGIN_DB') ?? resolve(dataDir, 'app.db')),
    cacheUrl,
    cachePrefix: str(env, 'SMS_LOGIN_CACHE_PREFIX') ?? 'sms_login',
    cacheVersion: num(env, 'SMS_LOGIN_CACHE_VERSION', 1, 1),
    poolSize: num(env, 'SMS_LOGIN_POOL_SIZE', 4, 1),
    codeTtlSeconds: num(env, 'SMS_LOGIN_CODE_TTL', 300, 1),
    resendSeconds: num(env, 'SMS_LOGIN_RESEND_SECONDS', 60, 1),
    maxCodeAttempts: num(env, 'SMS_LOGIN_MAX_ATTEMPTS', 5, 1),
    tokenTtlSeconds: num(env, 'SMS_LOGIN_TOKEN_TTL', 7 * 86400, 1),
    bannerEverySeconds: num(env, 'SMS_LOGIN_BANNER_EVERY', 60, 1),
    smsProvider: provider,
    smsHttpUrl: httpUrl,
    smsHttpToken: str(env, 'SMS_HTTP_TOKEN') ?? null,
    smsRetryBackoff: num(env, 'SMS_RETRY_BACKOFF', 1, 0.001, false),
    smsMaxRetries: num(env, 'SMS_MAX_RETRIES', 3, 0),
    embedWorker: flag(env, 'SMS_LOGIN_WORKER', true),
    embedBeat: flag(env, 'SMS_LOGIN_BEAT', true),
    seed: flag(env, 'SMS_LOGIN_SEED', true),
    logLevel: logLevel as Settings['logLevel'],
  });
}

/** The process's settings, read on first use (task modules and the server share them). */
let current: Settings | null = null;
export function settings(): Settings {
  current ??= loadSettings();
  return current;
}
