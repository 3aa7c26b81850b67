/**
 * redis:// and rediss:// URLs: `redis://[[user]:password@]host[:port][/db]`, TLS with rediss:// and the query
 * options `ca`, `cert`, `key` (file paths), `servername` and, on both, `socket_timeout` (seconds). Passwords are masked in anything we print.
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';

/** How long a command waits for its reply, whatever the connection's state (`?socket_timeout=<s>` changes it). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^@/]*)@/, '//***@');
  }
}

export function redisOptionsFromUrl(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CeleriacError(ErrorCode.BadUrl, `cannot parse Redis URL "${maskUrl(url)}" (expected redis://host:port/db)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new CeleriacError(ErrorCode.BadUrl, `not a Redis URL: "${maskUrl(url)}"`);
  }
  const dbText = u.pathname.replace(/^\//, '') || '0';
  const db = Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new CeleriacError(ErrorCode.BadUrl, `bad database number "${dbText}" in Redis URL "${maskUrl(url)}"`);
  }
  const port = u.port ? Number(u.port) : 6379;
  // redis-py's name: seconds a command may wait for its reply (stores/redis/connection.ts)
  const timeoutText = u.searchParams.get('socket_timeout');
  const timeout = timeoutText === null ? DEFAULT_COMMAND_TIMEOUT_MS / 1000 : Number(timeoutText);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new CeleriacError(ErrorCode.BadUrl,
      `bad socket_timeout "${timeoutText}" in Redis URL "${maskUrl(url)}" (expected a number of seconds > 0)`);
  }
  const opts: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    commandTimeout: Math.round(timeout * 1000),
  };
  if (u.protocol === 'rediss:') {
    const q = u.searchParams;
    const file = (name: string) => {
      const path = q.get(name);
      if (!path) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        throw new CeleriacError(ErrorCode.BadUrl,
          `cannot read the file ${name}=${path} named in Redis URL "${maskUrl(url)}" (${(err as Error).message})`, { cause: err });
      }
    };
    opts.tls = {
      ca: file('ca') ?? file('ssl_ca_certs'),
      cert: file('cert') ?? file('ssl_certfile'),
      key: file('key') ?? file('ssl_keyfile'),
      servername: q.get('servername') ?? undefined,
      rejectUnauthorized: q.get('ssl_cert_reqs') !== 'none' && q.get('ssl_cert_reqs') !== 'CERT_NONE',
    };
  }
  return opts;
}
