/**
 * KvConnection on an embedded SQLite file (better-sqlite3, WAL): the default when no Redis is configured.
 * Several processes may share the file (web app, `celeriac worker`, beat): every write is one IMMEDIATE transaction,
 * so NX sets, INCR and "delete and see whether I was the one" stay atomic across them, as on Redis.
 *
 * Tables:
 *   kv(key PRIMARY KEY, value, expires_at ms|null) — strings and counters; a row past expires_at is absent to every
 *     reader at once and is swept away by later writes (at most every 10 s, a bounded batch each time).
 *   kv_lists(id, key, value) — lists, newest = highest id; capped on push; they never expire.
 * URLs: sqlite://relative/path.db, sqlite:///relative/path.db, sqlite:////absolute/path.db (celeriac's spelling).
 */
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { KvConnection, SetOptions } from './connection.ts';

const SWEEP_EVERY_MS = 10_000;

export function sqliteFileFromUrl(url: string): string {
  const m = /^sqlite:\/\/(.*)$/i.exec(url);
  let path = (m?.[1] ?? '').replace(/[?#].*$/, '');
  if (path.startsWith('//')) path = path.slice(1);
  else if (path.startsWith('/')) path = path.slice(1);
  if (!m || path === '' || path.endsWith('/')) throw new Error(`not a SQLite file URL: ${JSON.stringify(url)}`);
  return isAbsolute(path) ? resolve(path) : resolve(process.cwd(), path);
}

interface Row {
  value: string;
  expires_at: number | null;
}

export class SqliteConnection implements KvConnection {
  readonly kind = 'sqlite' as const;
  readonly displayUrl: string;
  readonly file: string;
  /** The better-sqlite3 handle, for statements this interface does not wrap. */
  readonly native: Database.Database;
  private lastSweep = 0;
  private readonly q;
  private readonly tx;

  constructor(url: string) {
    this.file = sqliteFileFromUrl(url);
    this.displayUrl = `sqlite:///${this.file}`;
    mkdirSync(dirname(this.file), { recursive: true });
    const db = new Database(this.file, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE IF NOT EXISTS kv_lists (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS kv_lists_key ON kv_lists (key, id);`);
    this.native = db;
    const q = {
      row: db.prepare<[string], Row>('SELECT value, expires_at FROM kv WHERE key = ?'),
      put: db.prepare<[string, string, number | null]>(
        'INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at'),
      del: db.prepare<[string, number]>('DELETE FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)'),
      delAny: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
      expire: db.prepare<[number, string, number]>(
        'UPDATE kv SET expires_at = ? WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)'),
      sweep: db.prepare<[number]>(
        'DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 500)'),
      push: db.prepare<[string, string]>('INSERT INTO kv_lists (key, value) VALUES (?, ?)'),
      trim: db.prepare<[string, string, number]>(
        'DELETE FROM kv_lists WHERE key = ? AND id NOT IN (SELECT id FROM kv_lists WHERE key = ? ORDER BY id DESC LIMIT ?)'),
      llen: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM kv_lists WHERE key = ?'),
      range: db.prepare<[string], { value: string }>('SELECT value FROM kv_lists WHERE key = ? ORDER BY id DESC'),
    };
    this.q = q;
    const live = (key: string, now: number): Row | undefined => {
      const row = q.row.get(key);
      return row && (row.expires_at === null || row.expires_at > now) ? row : undefined;
    };
    this.tx = {
      set: db.transaction((key: string, value: string, expiresAt: number | null, nx: boolean, now: number) => {
        if (nx && live(key, now)) return false;
        q.put.run(key, value, expiresAt);
        return true;
      }),
      incr: db.transaction((key: string, by: number, now: number) => {
        const row = live(key, now);
        const current = row ? Number(row.value) : 0;
        if (row && !/^-?\d+$/.test(row.value)) throw new Error('ERR value is not an integer or out of range');
        const next = current + by;
        q.put.run(key, String(next), row ? row.expires_at : null);
        return next;
      }),
      del: db.transaction((keys: string[], now: number) => {
        let n = 0;
        for (const k of keys) {
          n += q.del.run(k, now).changes;
          q.delAny.run(k);
          n += q.trim.run(k, k, 0).changes > 0 ? 1 : 0;
        }
        return n;
      }),
      push: db.transaction((key: string, value: string, max: number) => {
        q.push.run(key, value);
        q.trim.run(key, key, max);
        return q.llen.get(key)?.n ?? 0;
      }),
    };
  }

  private maybeSweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    this.q.sweep.run(now);
  }

  async get(key: string): Promise<string | null> {
    const row = this.q.row.get(key);
    return row && (row.expires_at === null || row.expires_at > Date.now()) ? row.value : null;
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const now = Date.now();
    this.maybeSweep(now);
    const expiresAt = options.ttlMs === undefined ? null : now + Math.max(1, Math.round(options.ttlMs));
    return this.tx.set.immediate(key, value, expiresAt, options.nx ?? false, now);
  }

  async del(...keys: string[]): Promise<number> {
    return keys.length === 0 ? 0 : this.tx.del.immediate(keys, Date.now());
  }

  async incr(key: string, by = 1): Promise<number> {
    return this.tx.incr.immediate(key, by, Date.now());
  }

  async pexpire(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return this.q.expire.run(now + Math.max(1, Math.round(ttlMs)), key, now).changes > 0;
  }

  async pttl(key: string): Promise<number> {
    const row = this.q.row.get(key);
    const now = Date.now();
    if (!row || (row.expires_at !== null && row.expires_at <= now)) return -2;
    return row.expires_at === null ? -1 : row.expires_at - now;
  }

  async lpush(key: string, value: string, maxLength: number): Promise<number> {
    return this.tx.push.immediate(key, value, maxLength);
  }

  async lrange(key: string, start: number, stop: number): Promise<string[]> {
    const all = this.q.range.all(key).map((r) => r.value);
    const end = stop < 0 ? all.length + stop : stop;
    return all.slice(start < 0 ? Math.max(0, all.length + start) : start, end + 1);
  }

  async ping(): Promise<void> {
    this.native.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.native.open) this.native.close();
  }
}
