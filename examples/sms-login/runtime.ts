/**
 * The process's shared resources, built lazily from the settings on first use and closed together: the cache (on the
 * pool from cache/pool.ts), the app database and the services over them, and the SMS provider.
 * The web app gets them passed in; task modules, which a separate `celeriac worker` may load on their own, reach them
 * here (as Celery tasks in a Django project import Django's cache and models).
 */
import { Cache } from './cache/cache.ts';
import { closePool, pool } from './cache/pool.ts';
import { openAppDb, seed, type AppDb } from './db.ts';
import { settings } from './settings.ts';
import { UserStore } from './auth/users.ts';
import { CodeService } from './auth/codes.ts';
import { TokenService } from './auth/tokens.ts';
import { BannerService } from './banners.ts';
import { OutboxProvider } from './sms/outbox.ts';
import { HttpSmsProvider } from './sms/http-provider.ts';
import type { SmsProvider } from './sms/provider.ts';
import { ApiError } from './errors.ts';

export interface Runtime {
  cache: Cache;
  db: AppDb;
  users: UserStore;
  codes: CodeService;
  tokens: TokenService;
  banners: BannerService;
  sms: SmsProvider;
  /** Present when the provider is the outbox (the phone panel reads it). */
  outbox: OutboxProvider | null;
}

let current: Runtime | null = null;

export function runtime(): Runtime {
  if (current) return current;
  const s = settings();
  const cache = new Cache(() => pool().connection(), { prefix: s.cachePrefix, version: s.cacheVersion });
  const db = openAppDb(s.dbPath);
  const outbox = s.smsProvider === 'outbox' ? new OutboxProvider(() => pool().connection(), `${s.cachePrefix}:outbox`) : null;
  current = {
    cache,
    db,
    users: new UserStore(db),
    codes: new CodeService(cache, { codeTtlSeconds: s.codeTtlSeconds, resendSeconds: s.resendSeconds, maxAttempts: s.maxCodeAttempts }),
    tokens: new TokenService(cache, s.tokenTtlSeconds),
    banners: new BannerService(db, cache),
    sms: outbox ?? new HttpSmsProvider(s.smsHttpUrl ?? '', s.smsHttpToken),
    outbox,
  };
  return current;
}

/** Create the demo account and banners when the tables are empty (a concurrent first start is harmless). */
export async function seedDemoData(): Promise<void> {
  const rt = runtime();
  await seed(rt.db, async (u) => {
    try {
      await rt.users.create(u);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
  });
}

export async function closeRuntime(): Promise<void> {
  const rt = current;
  current = null;
  await closePool();
  if (rt?.db.open) rt.db.close();
}
