/**
 * The second way to reach the store, a cache like django-redis's `cache`: values are serialised (JSON here, never
 * pickle), keys are made as `<prefix>:<version>:<key>` (Django's KEY_FUNCTION, so bumping the version invalidates
 * everything at once), every set has a TTL unless told otherwise, and `connection()` gives the raw connection
 * underneath for what the cache does not wrap (like django-redis's `get_redis_connection('default')`; its keys are
 * not prefixed).
 *
 * Integers are stored as their JSON text, which is also Redis's integer text, so `incr` works on cached numbers.
 */
import type { KvConnection } from './connection.ts';

export interface CacheOptions {
  prefix: string;
  version: number;
  /** Seconds a set() keeps its value when it names no TTL; null keeps it until deleted (default 300, as Django). */
  defaultTtlSeconds?: number | null;
}

/** `undefined` in set() means "the default TTL", null means "never expires". */
export type Ttl = number | null | undefined;

export class Cache {
  readonly prefix: string;
  readonly version: number;
  readonly defaultTtlSeconds: number | null;

  constructor(private readonly conn: () => KvConnection, options: CacheOptions) {
    this.prefix = options.prefix;
    this.version = options.version;
    this.defaultTtlSeconds = options.defaultTtlSeconds === undefined ? 300 : options.defaultTtlSeconds;
  }

  /** The stored key for `key`: `sms_login:1:banner_list`. */
  makeKey(key: string, version = this.version): string {
    return `${this.prefix}:${version}:${key}`;
  }

  /** The connection underneath (not prefixed): for INCR on a shared counter, lists, and the like. */
  connection(): KvConnection {
    return this.conn();
  }

  private ttlMs(ttl: Ttl): number | undefined {
    const seconds = ttl === undefined ? this.defaultTtlSeconds : ttl;
    if (seconds === null) return undefined;
    if (!(seconds > 0)) throw new RangeError(`a cache TTL must be a positive number of seconds or null, got ${seconds}`);
    return seconds * 1000;
  }

  async get<T>(key: string): Promise<T | null> {
    const raw = await this.conn().get(this.makeKey(key));
    return raw === null ? null : (JSON.parse(raw) as T);
  }

  async set(key: string, value: unknown, ttl?: Ttl): Promise<void> {
    await this.conn().set(this.makeKey(key), serialise(value), { ttlMs: this.ttlMs(ttl) });
  }

  /** Set only when absent (Django's `cache.add`); true when this call stored it. */
  async add(key: string, value: unknown, ttl?: Ttl): Promise<boolean> {
    return this.conn().set(this.makeKey(key), serialise(value), { ttlMs: this.ttlMs(ttl), nx: true });
  }

  /** True when the key existed and this call removed it: an atomic claim when several race for one key. */
  async delete(key: string): Promise<boolean> {
    return (await this.conn().del(this.makeKey(key))) > 0;
  }

  /** Atomic add to an integer; a missing key counts from 0 and gets `ttl` (when given) on creation. */
  async incr(key: string, delta = 1, ttl?: Ttl): Promise<number> {
    const k = this.makeKey(key);
    const n = await this.conn().incr(k, delta);
    if (n === delta && ttl !== undefined) {
      const ms = this.ttlMs(ttl);
      if (ms !== undefined) await this.conn().pexpire(k, ms);
    }
    return n;
  }

  /** Seconds left, null when the key never expires, 0 when it is absent. */
  async ttl(key: string): Promise<number | null> {
    const ms = await this.conn().pttl(this.makeKey(key));
    if (ms === -1) return null;
    return ms < 0 ? 0 : Math.ceil(ms / 1000);
  }
}

function serialise(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`cannot cache ${typeof value} (only JSON values)`);
  return text;
}
