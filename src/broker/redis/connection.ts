/**
 * One place that opens Redis connections, so every role gets the same reconnect policy:
 * retry with capped backoff for ever (workers must resume after a Redis restart), while a single command gives up
 * after a bounded number of reconnect attempts so producers get an error instead of hanging.
 */
import { Redis } from 'ioredis';
import { redisOptionsFromUrl } from './url.ts';

export interface ConnectionOptions {
  /** Name shown in CLIENT LIST. */
  role: string;
  /** Blocking connections (BLMPOP, SUBSCRIBE) must not fail their command while reconnecting. */
  blocking?: boolean;
  autoPipelining?: boolean;
}

export function connectRedis(url: string, o: ConnectionOptions): Redis {
  return new Redis({
    ...redisOptionsFromUrl(url),
    connectionName: `celeriac-${o.role}`,
    enableAutoPipelining: o.autoPipelining ?? false,
    maxRetriesPerRequest: o.blocking ? null : 10,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    lazyConnect: false,
  });
}
