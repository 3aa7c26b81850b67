/**
 * KvConnection on Redis through ioredis: each method is one Redis command (lpush is LPUSH+LTRIM in one MULTI).
 * `native` is the ioredis client itself, for commands this interface does not wrap.
 * Keys touched: whatever the callers name (the cache prefixes them; see cache.ts).
 */
import { Redis } from 'ioredis';
import { redactUrl, type KvConnection, type SetOptions } from './connection.ts';

export class RedisConnection implements KvConnection {
  readonly kind = 'redis' as const;
  readonly displayUrl: string;
  readonly native: Redis;

  constructor(url: string) {
    this.displayUrl = redactUrl(url);
    // Fail a command quickly when Redis is down (a clear 503 from the web app) instead of queueing it for ever.
    this.native = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
    this.native.on('error', () => {}); // reported by the failing command; ioredis reconnects by itself
  }

  async get(key: string): Promise<string | null> {
    return this.native.get(key);
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const args: Array<string | number> = [];
    if (options.ttlMs !== undefined) args.push('PX', Math.max(1, Math.round(options.ttlMs)));
    if (options.nx) args.push('NX');
    const reply = await this.native.call('SET', key, value, ...args);
    return reply === 'OK';
  }

  async del(...keys: string[]): Promise<number> {
    return keys.length === 0 ? 0 : this.native.del(...keys);
  }

  async incr(key: string, by = 1): Promise<number> {
    return this.native.incrby(key, by);
  }

  async pexpire(key: string, ttlMs: number): Promise<boolean> {
    return (await this.native.pexpire(key, Math.max(1, Math.round(ttlMs)))) === 1;
  }

  async pttl(key: string): Promise<number> {
    return this.native.pttl(key);
  }

  async lpush(key: string, value: string, maxLength: number): Promise<number> {
    const replies = await this.native.multi().lpush(key, value).ltrim(key, 0, maxLength - 1).llen(key).exec();
    const err = replies?.find(([e]) => e)?.[0];
    if (err) throw err;
    return Number(replies?.[2]?.[1] ?? 0);
  }

  async lrange(key: string, start: number, stop: number): Promise<string[]> {
    return this.native.lrange(key, start, stop);
  }

  async ping(): Promise<void> {
    await this.native.ping();
  }

  async close(): Promise<void> {
    try {
      await this.native.quit();
    } catch {
      this.native.disconnect();
    }
  }
}
