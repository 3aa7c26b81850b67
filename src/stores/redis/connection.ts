/**
 * One place that opens Redis connections, so every role gets the same reconnect policy:
 * retry with capped backoff for ever (workers must resume after a Redis restart), while a single command gives up
 * after a bounded number of reconnect attempts so producers get an error instead of hanging.
 */
import { Redis } from 'ioredis';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';
import { maskUrl, redisOptionsFromUrl } from './url.ts';

const lastErrors = new WeakMap<Redis, Error>();
const urls = new WeakMap<Redis, string>();

export interface ConnectionOptions {
  /** Name shown in CLIENT LIST. */
  role: string;
  /** Blocking connections (BLMPOP, SUBSCRIBE) must not fail their command while reconnecting. */
  blocking?: boolean;
  autoPipelining?: boolean;
}

export function connectRedis(url: string, o: ConnectionOptions): Redis {
  const client = new Redis({
    ...redisOptionsFromUrl(url),
    connectionName: `celeriac-${o.role}`,
    enableAutoPipelining: o.autoPipelining ?? false,
    maxRetriesPerRequest: o.blocking ? null : 6,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    lazyConnect: false,
  });
  urls.set(client, maskUrl(url));
  // without a listener ioredis prints every reconnect failure; the last one explains a failed command
  client.on('error', (err: Error) => lastErrors.set(client, err));
  return client;
}

/** A failed command on a connection that cannot reach Redis becomes one clear error naming the (masked) URL. */
export function connectionError(client: Redis, err: unknown): unknown {
  if (err instanceof CeleriacError || !(err instanceof Error)) return err;
  if (client.status === 'ready' && !/max retries per request/i.test(err.message)) return err;
  const cause = lastErrors.get(client)?.message ?? err.message;
  return new CeleriacError(ErrorCode.Connection, `cannot reach Redis at ${urls.get(client)} (${cause})`, { cause: err });
}
