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

/**
 * Any failure of a command as one coded error naming the (masked) URL: on a connection that cannot reach Redis,
 * `cannot reach Redis at <url> (<the last connection error>)`; a reply error from a Redis that is up (a script
 * error, OOM, NOPERM…), `Redis at <url> refused a command (<its message>)`. Both are E_CONNECTION: the store cannot
 * be used. A CeleriacError passes unchanged.
 */
export function connectionError(client: Redis, err: unknown): CeleriacError {
  if (err instanceof CeleriacError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (client.status === 'ready' && !/max retries per request/i.test(message)) {
    return new CeleriacError(ErrorCode.Connection, `Redis at ${urls.get(client)} refused a command (${message})`, { cause: err });
  }
  const cause = lastErrors.get(client)?.message ?? message;
  return new CeleriacError(ErrorCode.Connection, `cannot reach Redis at ${urls.get(client)} (${cause})`, { cause: err });
}

/** Close a connection: QUIT when it is up (pending replies arrive first), else drop it (it may be reconnecting). */
export function closeRedis(client: Redis): Promise<void> | void {
  return client.status === 'ready' ? client.quit().then(() => {}, () => client.disconnect()) : client.disconnect();
}
