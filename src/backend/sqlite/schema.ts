/**
 * The SQLite result backend's tables and prepared statements (they may share a file with the SQLite broker's):
 *
 *   celeriac_results      task_id -> status, meta (the Celery record JSON), expires_at (ms; NULL: kept for ever)
 *   celeriac_chords       group_id -> size (header parts), expires_at
 *   celeriac_groups       group_id -> meta (a saved GroupResult, Celery's {"result": tuple} JSON), expires_at
 *   celeriac_chord_parts  (group_id, task_id) -> idx (group_index; NULL sorts last), state, result JSON, expires_at
 *
 * Invariants: a row past its expires_at reads as absent and may be overwritten like an absent one; a live SUCCESS
 * row is never overwritten (the upsert's WHERE); a chord part is stored once per task id (INSERT OR IGNORE), so a
 * redelivered part never inflates COUNT(*) and its first run's state and result are kept (backend.ts, promise 5).
 */
import type { Db } from '../../stores/sqlite/driver.ts';

const DDL = `
CREATE TABLE IF NOT EXISTS celeriac_results (
  task_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  meta TEXT NOT NULL,
  expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS celeriac_results_expiry ON celeriac_results (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS celeriac_chords (group_id TEXT PRIMARY KEY, size INTEGER NOT NULL, expires_at INTEGER)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_groups (group_id TEXT PRIMARY KEY, meta TEXT NOT NULL, expires_at INTEGER)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_chord_parts (
  group_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  idx INTEGER,
  state TEXT NOT NULL,
  result TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (group_id, task_id)
);
`;

export function createBackendSchema(db: Db): void {
  db.transaction(() => db.exec(DDL)).immediate();
}

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

export function backendStatements(db: Db) {
  const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
  return {
    /** (task_id, status, meta, expires_at, now) */
    store: p(`INSERT INTO celeriac_results (task_id, status, meta, expires_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, meta = excluded.meta, expires_at = excluded.expires_at
      WHERE celeriac_results.status <> 'SUCCESS'
         OR (celeriac_results.expires_at IS NOT NULL AND celeriac_results.expires_at <= ?)`),
    get: p<string>(`SELECT meta FROM celeriac_results WHERE task_id = ? AND ${LIVE}`).pluck(),
    /** The ready records among a JSON array of task ids. */
    readyAmong: p<{ task_id: string; meta: string }>(`SELECT task_id, meta FROM celeriac_results
      WHERE task_id IN (SELECT value FROM json_each(?)) AND status IN ('SUCCESS', 'FAILURE', 'REVOKED') AND ${LIVE}`),
    forget: p(`DELETE FROM celeriac_results WHERE task_id = ?`),
    sweepResults: p(`DELETE FROM celeriac_results WHERE task_id IN
      (SELECT task_id FROM celeriac_results WHERE expires_at <= ? LIMIT 5000)`),
    sweepChords: p(`DELETE FROM celeriac_chords WHERE expires_at <= ?`),
    sweepGroups: p(`DELETE FROM celeriac_groups WHERE expires_at <= ?`),
    /** (group_id, meta, expires_at) */
    saveGroup: p(`INSERT INTO celeriac_groups (group_id, meta, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (group_id) DO UPDATE SET meta = excluded.meta, expires_at = excluded.expires_at`),
    restoreGroup: p<string>(`SELECT meta FROM celeriac_groups WHERE group_id = ? AND ${LIVE}`).pluck(),
    deleteGroup: p(`DELETE FROM celeriac_groups WHERE group_id = ?`),
    sweepParts: p(`DELETE FROM celeriac_chord_parts WHERE expires_at <= ?`),
    setChordSize: p(`INSERT INTO celeriac_chords (group_id, size, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (group_id) DO UPDATE SET size = excluded.size, expires_at = excluded.expires_at`),
    chordSize: p<number>(`SELECT size FROM celeriac_chords WHERE group_id = ? AND ${LIVE}`).pluck(),
    addPart: p(`INSERT OR IGNORE INTO celeriac_chord_parts (group_id, task_id, idx, state, result, expires_at)
      VALUES (?, ?, ?, ?, ?, ?)`),
    countParts: p<number>(`SELECT COUNT(*) FROM celeriac_chord_parts WHERE group_id = ?`).pluck(),
    parts: p<{ task_id: string; state: string; result: string }>(`SELECT task_id, state, result
      FROM celeriac_chord_parts WHERE group_id = ? ORDER BY idx IS NULL, idx, rowid`),
    dropChord: p(`DELETE FROM celeriac_chords WHERE group_id = ?`),
    dropParts: p(`DELETE FROM celeriac_chord_parts WHERE group_id = ?`),
  };
}

export type BackendStatements = ReturnType<typeof backendStatements>;
