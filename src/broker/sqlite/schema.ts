/**
 * The SQLite broker's tables and its prepared statements. One row per message, whatever its state:
 *
 *   celeriac_messages      id, queue, band (kombu priority step 0/3/6/9), seq (order within queue+band), state,
 *                          raw (the envelope), tag (delivery tag while reserved), lease_until / reserved_at (ms,
 *                          while reserved), due_at (ms, while parked)
 *       state 'ready'     waiting in its queue: served by band, then seq (lowest first)
 *       state 'reserved'  held by a consumer until acked, requeued, dead-lettered, deferred, or its lease runs out
 *       state 'parked'    an ETA message (defer, or publish with dueAt) until promoteDue() makes it ready
 *   celeriac_counters      'seq': the last seq handed to a published message (publishes go to the back)
 *   celeriac_dead_letters  list (the dead-letter queue's name), reason, queue, raw, at (ISO), size, sha1, truncated:
 *                          messages set aside (stores/dead-letter.ts), the newest `deadLetterLimit` per list
 *   celeriac_workers       instance -> alive_until (ms): live celeriac workers (heartbeat / leave)
 *   celeriac_beat_locks    app -> owner, expires_at (ms): beat's leader lock
 *   celeriac_beat_runs     (app, entry) -> last_run (ms)
 *   celeriac_revokes       task_id -> expires_at (ms): revoked task ids, pruned (expired, then past the limit the
 *                          soonest to expire) on every write
 *   celeriac_pidbox        id (AUTOINCREMENT: never reused, listeners read id > the last they saw), at (ms), raw:
 *                          remote-control requests broadcast to every worker (control.ts), kept PIDBOX_KEEP_MS
 *   celeriac_pidbox_replies id, reply_to (the caller's oid), at (ms), raw: replies, taken (deleted) by the caller;
 *                          those nobody took are dropped after PIDBOX_KEEP_MS
 *   celeriac_events        id (AUTOINCREMENT), routing_key, at (ms), raw: worker events (worker-heartbeat, …), the
 *                          newest EVENTS_KEPT and none older than EVENTS_KEEP_MS
 *
 * Invariants: every ready seq is at most the counter, so a publish (counter + 1) lands behind everything waiting,
 * and a message put back takes MIN(seq) - 1 of its queue and band, landing in front. The partial indexes match the
 * WHERE clauses below exactly (SQLite uses a partial index only when the query implies its condition).
 */
import type { Db } from '../../stores/sqlite/database.ts';

const DDL = `
CREATE TABLE IF NOT EXISTS celeriac_messages (
  id INTEGER PRIMARY KEY,
  queue TEXT NOT NULL,
  band INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'reserved', 'parked')),
  raw TEXT NOT NULL,
  tag TEXT,
  lease_until INTEGER,
  reserved_at INTEGER,
  due_at INTEGER
);
CREATE INDEX IF NOT EXISTS celeriac_messages_ready ON celeriac_messages (queue, band, seq) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS celeriac_messages_tag ON celeriac_messages (tag) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS celeriac_messages_lease ON celeriac_messages (lease_until) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS celeriac_messages_due ON celeriac_messages (due_at) WHERE state = 'parked';
CREATE TABLE IF NOT EXISTS celeriac_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO celeriac_counters (name, value) VALUES ('seq', 0);
CREATE TABLE IF NOT EXISTS celeriac_dead_letters (
  id INTEGER PRIMARY KEY,
  list TEXT NOT NULL,
  reason TEXT NOT NULL,
  queue TEXT NOT NULL,
  raw TEXT NOT NULL,
  at TEXT NOT NULL,
  size INTEGER,
  sha1 TEXT,
  truncated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS celeriac_dead_letters_list ON celeriac_dead_letters (list, id);
CREATE TABLE IF NOT EXISTS celeriac_workers (instance TEXT PRIMARY KEY, alive_until INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_beat_locks (app TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_beat_runs (
  app TEXT NOT NULL, entry TEXT NOT NULL, last_run INTEGER NOT NULL, PRIMARY KEY (app, entry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_revokes (task_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS celeriac_revokes_expiry ON celeriac_revokes (expires_at);
CREATE TABLE IF NOT EXISTS celeriac_pidbox (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, raw TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS celeriac_pidbox_replies (
  id INTEGER PRIMARY KEY, reply_to TEXT NOT NULL, at INTEGER NOT NULL, raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_pidbox_replies_to ON celeriac_pidbox_replies (reply_to);
CREATE TABLE IF NOT EXISTS celeriac_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, routing_key TEXT NOT NULL, at INTEGER NOT NULL, raw TEXT NOT NULL
);
`;

export interface MessageRow {
  id: number;
  queue: string;
  band: number;
  raw: string;
}

export interface DeadLetterRow {
  reason: string;
  queue: string;
  raw: string;
  at: string;
  /** NULL in rows written before the entry kept a size and hash (the message was then kept whole). */
  size: number | null;
  sha1: string | null;
  truncated: number;
}

/** Columns added to celeriac_dead_letters after its first release: added to files made before. */
const DEAD_LETTER_COLUMNS: Array<[string, string]> = [
  ['size', 'INTEGER'], ['sha1', 'TEXT'], ['truncated', 'INTEGER NOT NULL DEFAULT 0'],
];

/**
 * Create the tables if missing (idempotent; safe when several processes start at once). Files made by an older
 * release get the tables added since (CREATE … IF NOT EXISTS: celeriac_revokes) and the missing columns.
 */
export function createBrokerSchema(db: Db): void {
  db.transaction(() => {
    db.exec(DDL);
    const have = new Set(db.prepare<[], { name: string }>(`PRAGMA table_info(celeriac_dead_letters)`).all().map((c) => c.name));
    for (const [name, type] of DEAD_LETTER_COLUMNS) {
      if (!have.has(name)) db.exec(`ALTER TABLE celeriac_dead_letters ADD COLUMN ${name} ${type}`);
    }
  }).immediate();
}

const M = 'celeriac_messages';
const BACK_TO_READY = `state = 'ready', tag = NULL, lease_until = NULL, reserved_at = NULL, due_at = NULL`;

export function brokerStatements(db: Db) {
  const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
  return {
    bumpSeq: p<{ value: number }>(`UPDATE celeriac_counters SET value = value + ? WHERE name = 'seq' RETURNING value`),
    insertReady: p(`INSERT INTO ${M} (queue, band, seq, state, raw) VALUES (?, ?, ?, 'ready', ?)`),
    insertParked: p(`INSERT INTO ${M} (queue, band, seq, state, raw, due_at) VALUES (?, ?, 0, 'parked', ?, ?)`),
    anyReady: p(`SELECT 1 FROM ${M} WHERE state = 'ready' AND queue = ? LIMIT 1`).pluck(),
    nextReady: p<MessageRow>(`SELECT id, queue, band, raw FROM ${M} WHERE state = 'ready' AND queue = ? AND band = ?
      ORDER BY seq LIMIT ?`),
    markReserved: p(`UPDATE ${M} SET state = 'reserved', tag = ?, lease_until = ?, reserved_at = ? WHERE id = ?`),
    deleteRow: p(`DELETE FROM ${M} WHERE id = ?`),
    ack: p(`DELETE FROM ${M} WHERE state = 'reserved' AND tag IN (SELECT value FROM json_each(?))`),
    renew: p(`UPDATE ${M} SET lease_until = ? WHERE state = 'reserved' AND tag IN (SELECT value FROM json_each(?))`),
    reservedByTag: p<MessageRow>(`SELECT id, queue, band, raw FROM ${M} WHERE state = 'reserved' AND tag = ? ORDER BY id`),
    frontSeq: p<number | null>(`SELECT MIN(seq) FROM ${M} WHERE state = 'ready' AND queue = ? AND band = ?`).pluck(),
    putBack: p(`UPDATE ${M} SET ${BACK_TO_READY}, seq = ?, raw = ? WHERE id = ?`),
    anyExpired: p(`SELECT 1 FROM ${M} WHERE state = 'reserved' AND lease_until <= ? LIMIT 1`).pluck(),
    expired: p<MessageRow>(`SELECT id, queue, band, raw FROM ${M} WHERE state = 'reserved' AND lease_until <= ?
      ORDER BY reserved_at, id LIMIT ?`),
    park: p(`UPDATE ${M} SET state = 'parked', due_at = ?, tag = NULL, lease_until = NULL, reserved_at = NULL
      WHERE state = 'reserved' AND tag = ?`),
    nextDue: p<number | null>(`SELECT MIN(due_at) FROM ${M} WHERE state = 'parked'`).pluck(),
    due: p<MessageRow>(`SELECT id, queue, band, raw FROM ${M} WHERE state = 'parked' AND due_at <= ?
      ORDER BY due_at, id LIMIT ?`),
    allParked: p<MessageRow>(`SELECT id, queue, band, raw FROM ${M} WHERE state = 'parked' ORDER BY due_at, id`),
    heartbeat: p(`INSERT INTO celeriac_workers (instance, alive_until) VALUES (?, ?)
      ON CONFLICT (instance) DO UPDATE SET alive_until = excluded.alive_until`),
    leave: p(`DELETE FROM celeriac_workers WHERE instance = ? OR alive_until <= ?`),
    workersAlive: p<number>(`SELECT COUNT(*) FROM celeriac_workers`).pluck(),
    workers: p<{ instance: string; alive_until: number }>(
      `SELECT instance, alive_until FROM celeriac_workers WHERE alive_until > ? ORDER BY instance`),
    purge: p(`DELETE FROM ${M} WHERE state = 'ready' AND queue = ?`),
    queueLength: p<number>(`SELECT COUNT(*) FROM ${M} WHERE state = 'ready' AND queue = ?`).pluck(),
    addDeadLetter: p(`INSERT INTO celeriac_dead_letters (list, reason, queue, raw, at, size, sha1, truncated)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    /** Keep the newest N (third parameter) entries of a list. */
    trimDeadLetters: p(`DELETE FROM celeriac_dead_letters WHERE list = ? AND id <= (SELECT id FROM celeriac_dead_letters
      WHERE list = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`),
    deadLetters: p<DeadLetterRow>(`SELECT reason, queue, raw, at, size, sha1, truncated FROM celeriac_dead_letters
      WHERE list = ? ORDER BY id DESC LIMIT ?`),
    lockHolder: p<{ owner: string; expires_at: number }>(`SELECT owner, expires_at FROM celeriac_beat_locks WHERE app = ?`),
    setLock: p(`INSERT INTO celeriac_beat_locks (app, owner, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (app) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`),
    unlock: p(`DELETE FROM celeriac_beat_locks WHERE app = ? AND owner = ?`),
    lastRuns: p<{ entry: string; last_run: number }>(`SELECT entry, last_run FROM celeriac_beat_runs WHERE app = ?`),
    lastRun: p<number>(`SELECT last_run FROM celeriac_beat_runs WHERE app = ? AND entry = ?`).pluck(),
    setLastRun: p(`INSERT INTO celeriac_beat_runs (app, entry, last_run) VALUES (?, ?, ?)
      ON CONFLICT (app, entry) DO UPDATE SET last_run = excluded.last_run`),
    pruneRuns: p(`DELETE FROM celeriac_beat_runs WHERE app = ? AND entry NOT IN (SELECT value FROM json_each(?))`),
    /** An id stored again keeps the later of its two expiries. */
    revoke: p(`INSERT INTO celeriac_revokes (task_id, expires_at) VALUES (?, ?)
      ON CONFLICT (task_id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`),
    pruneRevokes: p(`DELETE FROM celeriac_revokes WHERE expires_at <= ?`),
    /** Keep the N (parameter) that expire last. */
    trimRevokes: p(`DELETE FROM celeriac_revokes WHERE task_id IN (SELECT task_id FROM celeriac_revokes
      ORDER BY expires_at DESC, task_id LIMIT -1 OFFSET ?)`),
    revoked: p<{ task_id: string; expires_at: number }>(`SELECT task_id, expires_at FROM celeriac_revokes
      WHERE expires_at > ? AND task_id IN (SELECT value FROM json_each(?))`),
    liveRevokes: p<{ task_id: string; expires_at: number }>(
      `SELECT task_id, expires_at FROM celeriac_revokes WHERE expires_at > ?`),
  };
}

export type BrokerStatements = ReturnType<typeof brokerStatements>;

/** Remote control's statements (control.ts). Rows are few (seconds' worth), so age pruning scans the table. */
export function controlStatements(db: Db) {
  const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
  return {
    lastRequest: p<number | null>(`SELECT MAX(id) FROM celeriac_pidbox`).pluck(),
    addRequest: p(`INSERT INTO celeriac_pidbox (at, raw) VALUES (?, ?)`),
    requestsAfter: p<{ id: number; raw: string }>(`SELECT id, raw FROM celeriac_pidbox WHERE id > ? ORDER BY id LIMIT ?`),
    pruneRequests: p(`DELETE FROM celeriac_pidbox WHERE at <= ?`),
    addReply: p(`INSERT INTO celeriac_pidbox_replies (reply_to, at, raw) VALUES (?, ?, ?)`),
    anyReply: p(`SELECT 1 FROM celeriac_pidbox_replies WHERE reply_to = ? LIMIT 1`).pluck(),
    takeReplies: p<{ id: number; raw: string }>(`DELETE FROM celeriac_pidbox_replies WHERE reply_to = ? RETURNING id, raw`),
    pruneReplies: p(`DELETE FROM celeriac_pidbox_replies WHERE at <= ?`),
    addEvent: p(`INSERT INTO celeriac_events (routing_key, at, raw) VALUES (?, ?, ?)`),
    /** Drop events older than the first parameter, and all but the newest N (second parameter). */
    pruneEvents: p(`DELETE FROM celeriac_events WHERE at <= ? OR id <= (SELECT id FROM celeriac_events
      ORDER BY id DESC LIMIT 1 OFFSET ?)`),
  };
}

export type ControlStatements = ReturnType<typeof controlStatements>;
