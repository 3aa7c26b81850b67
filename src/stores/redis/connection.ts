/**
 * One place that opens Redis connections, so every role gets the same reconnect policy:
 * retry with capped backoff for ever (workers must resume after a Redis restart), while a single command gives up
 * after a bounded number of reconnect attempts so producers get an error instead of hanging. Every command, on every
 * connection, also has a bound on its wait for a reply (`commandTimeout`, 5 s by default, `?socket_timeout=<s>` in
 * the URL), so a stalled connection (TCP open, nothing coming back) fails calls instead of blocking them; TCP
 * keep-alive finds connections that died without a word.
 */
import { Redis } from 'ioredis';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';
import { maskUrl, redisOptionsFromUrl } from './url.ts';

const lastErrors = new WeakMap<Redis, Error>();
const urls = new WeakMap<Redis, string>();
const policies = new WeakMap<Redis, Promise<string | null>>();

/** The first TCP keep-alive probe after this much silence (ms). */
const KEEPALIVE_MS = 10_000;

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
    keepAlive: KEEPALIVE_MS,
    lazyConnect: false,
  });
  urls.set(client, maskUrl(url));
  // without a listener ioredis prints every reconnect failure; the last one explains a failed command
  client.on('error', (err: Error) => lastErrors.set(client, err));
  client.on('ready', () => lastErrors.delete(client));
  return client;
}

const isTimeout = (message: string) => /command timed out/i.test(message);
const isOom = (message: string) => /\bOOM\b/.test(message);

/**
 * Any failure of a command as one coded error naming the (masked) URL and the cause, in our words:
 * - Redis is out of memory (`-OOM`): E_BROKER_FULL, `Redis at <url> is full: it refused a write (out of memory) …`;
 * - no reply within the command timeout on a connection that is up: E_CONNECTION, `no reply from Redis at <url>
 *   within <n> ms …` (a stalled connection or a blocked Redis);
 * - a connection that cannot reach Redis: E_CONNECTION, `cannot reach Redis at <url> (<the last connection error>)`,
 *   e.g. the TLS verification failure or ECONNREFUSED, never ioredis' retry counter;
 * - any other reply error from a Redis that is up (a script error, NOPERM…): E_CONNECTION,
 *   `Redis at <url> refused a command (<its message>)`.
 * A CeleriacError passes unchanged.
 */
export function connectionError(client: Redis, err: unknown): CeleriacError {
  if (err instanceof CeleriacError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const url = urls.get(client);
  if (isOom(message)) {
    return new CeleriacError(ErrorCode.BrokerFull,
      `Redis at ${url} is full: it refused a write (out of memory, used memory > maxmemory). Free memory (start workers to `
      + `drain the queues, lower resultExpires) or raise the limit (CONFIG SET maxmemory <bytes>)`, { cause: err });
  }
  const timeoutMs = client.options.commandTimeout;
  if (client.status === 'ready' && isTimeout(message)) {
    return new CeleriacError(ErrorCode.Connection,
      `no reply from Redis at ${url} within ${timeoutMs} ms: the connection stalled or Redis is blocked `
      + `(socket_timeout=<seconds> in the URL changes the bound)`, { cause: err });
  }
  if (client.status === 'ready' && !/max retries per request/i.test(message)) {
    return new CeleriacError(ErrorCode.Connection, `Redis at ${url} refused a command (${message})`, { cause: err });
  }
  const last = lastErrors.get(client)?.message;
  const cause = last ?? (isTimeout(message) || /max retries per request/i.test(message)
    ? `no connection within ${timeoutMs} ms` : message);
  return new CeleriacError(ErrorCode.Connection, `cannot reach Redis at ${url} (${cause})`, { cause: err });
}

/** A connection's error in our words (connectionError's message), for warnings logged while Redis is away. */
export function describeError(client: Redis, err: unknown): string {
  return connectionError(client, err).message;
}

/**
 * The warning for a Redis that may evict keys (any `maxmemory-policy` but `noeviction`): queued messages and
 * reservations could vanish without a trace. Null when the policy is noeviction, or when Redis refuses CONFIG
 * (managed Redis often does) or cannot be asked. Asked once per connection.
 */
export function evictionWarning(client: Redis): Promise<string | null> {
  let p = policies.get(client);
  if (!p) {
    p = (client.config('GET', 'maxmemory-policy') as Promise<string[]>).then(
      (reply) => (Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : null),
      () => null,
    );
    policies.set(client, p);
  }
  return p.then((policy) => (policy === null || policy === 'noeviction' ? null
    : `Redis at ${urls.get(client)} has maxmemory-policy ${policy}: when it fills up it evicts keys, and queued `
      + `messages, reservations and results vanish silently. Run CONFIG SET maxmemory-policy noeviction on it `
      + `(and set it in redis.conf)`));
}

/** Close a connection: QUIT when it is up (pending replies arrive first), else drop it (it may be reconnecting). */
export function closeRedis(client: Redis): Promise<void> | void {
  return client.status === 'ready' ? client.quit().then(() => {}, () => client.disconnect()) : client.disconnect();
}
