/**
 * The key-value connection the cache, the codes, the tokens and the outbox stand on: the few Redis commands this
 * app needs, with Redis's meaning, so that the same code runs on Redis and on the embedded SQLite store.
 *
 * Invariants (both implementations):
 * - values are strings; TTLs are milliseconds; an expired key reads as absent everywhere, at once;
 * - `set(..., { nx: true })` and `incr` are atomic across every process that uses the same store;
 * - `del` returns how many keys it removed, so "delete and see whether I was the one" is an atomic claim;
 * - lists (`lpush`/`lrange`) are capped on push and never expire.
 */

export interface SetOptions {
  /** Expire after this many milliseconds (PX). */
  ttlMs?: number;
  /** Only when the key is absent (NX); set() then returns false when it was present. */
  nx?: boolean;
}

export interface KvConnection {
  /** 'redis' or 'sqlite', and the URL without a password, for logs. */
  readonly kind: 'redis' | 'sqlite';
  readonly displayUrl: string;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  /** INCRBY: creates the key at 0 first (without a TTL), fails when the value is not an integer. */
  incr(key: string, by?: number): Promise<number>;
  /** PEXPIRE: false when the key does not exist. */
  pexpire(key: string, ttlMs: number): Promise<boolean>;
  /** PTTL: -2 when absent, -1 when it never expires. */
  pttl(key: string): Promise<number>;
  /** LPUSH one value, then LTRIM the list to its newest `maxLength` items; returns the new length. */
  lpush(key: string, value: string, maxLength: number): Promise<number>;
  /** LRANGE, newest first (inclusive indexes, -1 is the last). */
  lrange(key: string, start: number, stop: number): Promise<string[]>;
  /** Answers when the store is reachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The URL with its password replaced, safe to print. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
