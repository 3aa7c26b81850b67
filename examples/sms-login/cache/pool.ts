/**
 * The first way to reach the store, a pool module (like a redis-py `pool.py`): one connection pool per process, in a
 * module that any file imports where it needs a connection
 * (`const conn = pool().connection(); await conn.incr('count')`).
 *
 * On Redis the pool opens up to `poolSize` ioredis clients lazily and hands them out in turn (an ioredis client
 * pipelines many commands at once, so handing out is round-robin, not check-out/check-in). On SQLite it is a
 * single connection: SQLite serialises writers anyway, and WAL lets readers in other processes go on.
 * This module and runtime.ts are the only process-wide state of the example.
 */
import type { KvConnection } from './connection.ts';
import { RedisConnection } from './redis-connection.ts';
import { SqliteConnection } from './sqlite-connection.ts';
import { settings } from '../settings.ts';

export class ConnectionPool {
  private readonly open: KvConnection[] = [];
  private turn = 0;
  readonly maxConnections: number;
  private closed = false;

  constructor(readonly url: string, options: { maxConnections?: number } = {}) {
    const redis = /^rediss?:/i.test(url);
    this.maxConnections = redis ? Math.max(1, options.maxConnections ?? 4) : 1;
  }

  get kind(): 'redis' | 'sqlite' {
    return /^rediss?:/i.test(this.url) ? 'redis' : 'sqlite';
  }

  /** A connection from the pool; opened on first use. */
  connection(): KvConnection {
    if (this.closed) throw new Error('the connection pool is closed');
    if (this.open.length < this.maxConnections) {
      const conn = this.kind === 'redis' ? new RedisConnection(this.url) : new SqliteConnection(this.url);
      this.open.push(conn);
      return conn;
    }
    this.turn = (this.turn + 1) % this.open.length;
    return this.open[this.turn];
  }

  get size(): number {
    return this.open.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.open.splice(0).map((c) => c.close()));
  }
}

let POOL: ConnectionPool | null = null;

/** The process's pool, built from the settings on first use (like redis-py's `POOL = redis.ConnectionPool(...)`). */
export function pool(): ConnectionPool {
  POOL ??= new ConnectionPool(settings().cacheUrl, { maxConnections: settings().poolSize });
  return POOL;
}

export async function closePool(): Promise<void> {
  const p = POOL;
  POOL = null;
  await p?.close();
}
