/**
 * The SQLite result backend (`sqlite://<path>`, the same file as the SQLite broker if you like): Celery's records
 * in a table, with expiry, never overwriting a SUCCESS, chord counters, and wait() without polling.
 *
 * Invariants:
 * - store() is one IMMEDIATE transaction for the whole batch, then wakes this process's waiters; other processes'
 *   waiters wake through the file's change feed (stores/sqlite/notify.ts: inotify + PRAGMA data_version).
 * - Expired records read as absent at once; they are deleted by a sweep at most once a minute, on store().
 * - wait() (stores/waiters.ts): every waiter of a backend shares one feed subscription; on each commit one query
 *   reads the ready records among all waited ids. A record stored before the call is found by the first look, which
 *   happens after subscribing, so nothing falls in between.
 * Tables: see schema.ts.
 */
import { decodeResultMeta, encodeResultMeta, type ResultMeta } from '../../protocol/index.ts';
import {
  lazyImmediate, openStore, sqliteDisplayUrl, sqliteFailure, sqlitePathFromUrl, type OpenOptions, type SharedDatabase,
} from '../../stores/sqlite/database.ts';
import type { BackendOptions, ChordPart, ResultBackend, StoreRequest } from '../backend.ts';
import { backendStatements, createBackendSchema, type BackendStatements } from './schema.ts';
import { SWEEP_EVERY_MS, expiresAt, resultTtlMs } from '../../stores/limits.ts';
import { ResultWaiters } from '../../stores/waiters.ts';
import { closedError, fromJson, toJson } from '../../stores/errors.ts';

export type SqliteBackendOptions = OpenOptions;

export class SqliteBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly handle: SharedDatabase;
  private readonly s: BackendStatements;
  private readonly ttlMs: number;
  /** Every waiter of this backend shares one subscription to the file's change feed, held while anyone waits. */
  private readonly waiters = new ResultWaiters({
    busy: () => {
      this.unsubscribe ??= this.handle.feed.subscribe(() => this.checkWaiters());
    },
    idle: () => {
      this.unsubscribe?.();
      this.unsubscribe = null;
    },
  });
  private unsubscribe: (() => void) | null = null;
  private lastSweep = 0;
  private closed = false;

  constructor(url: string, options: BackendOptions, o: SqliteBackendOptions = {}) {
    this.ttlMs = resultTtlMs(options.resultExpires);
    const file = sqlitePathFromUrl(url);
    this.displayUrl = sqliteDisplayUrl(file);
    this.handle = openStore(file, o);
    try {
      createBackendSchema(this.handle.db);
      this.s = backendStatements(this.handle.db);
    } catch (err) {
      // E_CONNECTION, or E_BROKER_FULL when the disk is full (before release: the connection checkpoints its log)
      const failure = sqliteFailure(file, 'create the result tables in', err);
      this.handle.release();
      throw failure;
    }
  }

  private check(): void {
    if (this.closed) throw closedError('result backend', this.displayUrl);
  }

  /** Every call: E_CLOSED after close(), and any SQLite failure as one coded error naming the file and `what`. */
  private use<T>(what: string, fn: () => T): T {
    this.check();
    try {
      return fn();
    } catch (err) {
      throw sqliteFailure(this.handle.file, what, err);
    }
  }

  private expiresAt(now: number): number | null {
    return expiresAt(this.ttlMs, now);
  }

  private readonly storeTx = this.immediate((entries: StoreRequest[], now: number) => {
    const expires = this.expiresAt(now);
    for (const e of entries) this.s.store.run(e.taskId, String(e.meta.status), encodeResultMeta(e.meta), expires, now);
  });

  /** An IMMEDIATE transaction (stores/sqlite/database.ts lazyImmediate). */
  private immediate<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return lazyImmediate(() => this.handle.db, fn);
  }

  async store(entries: StoreRequest[]): Promise<void> {
    if (entries.length === 0) return this.check();
    const now = Date.now();
    this.use('store results in', () => this.storeTx(entries, now));
    this.handle.feed.changed();
    if (now - this.lastSweep > SWEEP_EVERY_MS) this.sweep(now);
  }

  /** Delete what has expired (reads already ignore it; this only reclaims the space). */
  private sweep(now: number): void {
    this.lastSweep = now;
    try {
      this.s.sweepResults.run(now);
      this.s.sweepChords.run(now);
      this.s.sweepGroups.run(now);
      this.s.sweepParts.run(now);
    } catch {
      // busy with other writers: the next sweep will do
    }
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    return (await this.getMany([taskId]))[0];
  }

  async getMany(taskIds: string[]): Promise<(ResultMeta | null)[]> {
    const now = Date.now();
    const raws = this.use('read results from', () => taskIds.map((id) => this.s.get.get(id, now)));
    return raws.map((raw, i) => (raw === undefined ? null : decodeResultMeta(raw, taskIds[i])));
  }

  /** Settle every waiter whose record is now ready (one query for all waited ids). */
  private checkWaiters(): void {
    if (this.waiters.size === 0 || this.closed) return;
    let rows: { task_id: string; meta: string }[];
    try {
      rows = this.s.readyAmong.all(JSON.stringify(this.waiters.ids()), Date.now());
    } catch {
      return; // busy or closing: the next change (or the fallback poll) tries again
    }
    for (const row of rows) this.waiters.settleRecord(row.task_id, row.meta);
  }

  async wait(taskId: string, timeoutMs: number): Promise<ResultMeta> {
    this.check();
    // registered (and subscribed to the feed) before this first look, so a commit in between is not missed
    return this.waiters.wait(taskId, timeoutMs, () => this.get(taskId));
  }

  async forget(taskId: string): Promise<void> {
    this.use('forget a result in', () => this.s.forget.run(taskId));
  }

  async saveGroup(groupId: string, tuple: unknown): Promise<void> {
    const meta = toJson({ result: tuple }, `group ${groupId}`);
    this.use('save a group in', () => this.s.saveGroup.run(groupId, meta, this.expiresAt(Date.now())));
  }

  async restoreGroup(groupId: string): Promise<unknown | null> {
    const raw = this.use('read a group from', () => this.s.restoreGroup.get(groupId, Date.now()));
    if (raw === undefined) return null;
    return (fromJson(raw, `group ${groupId}`) as { result?: unknown })?.result ?? null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.use('delete a group from', () => this.s.deleteGroup.run(groupId));
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    this.use('record a chord size in', () => this.s.setChordSize.run(groupId, size, this.expiresAt(Date.now())));
  }

  private readonly partTx = this.immediate((part: ChordPart, now: number): Array<[string, string, unknown]> | null => {
    // a redelivered part counts once and keeps its first value (the insert is ignored: backend.ts, promise 5), but may
    // complete the chord again until chordCleanup()
    const result = toJson(part.result ?? null, `the result of chord part ${part.taskId}`);
    this.s.addPart.run(part.groupId, part.taskId, part.index, part.state, result, this.expiresAt(now));
    const size = this.s.chordSize.get(part.groupId, now);
    if (size === undefined || this.s.countParts.get(part.groupId) !== size) return null;
    return this.s.parts.all(part.groupId)
      .map((r) => [r.task_id, r.state, fromJson(r.result, `the stored result of chord part ${r.task_id}`)]);
  });

  async chordPartDone(part: ChordPart): Promise<Array<[string, string, unknown]> | null> {
    return this.use('join a chord part in', () => this.partTx(part, Date.now()));
  }

  private readonly dropTx = this.immediate((groupId: string) => {
    this.s.dropChord.run(groupId);
    this.s.dropParts.run(groupId);
  });

  async chordCleanup(groupId: string): Promise<void> {
    this.use('clean up a chord in', () => this.dropTx(groupId));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiters.closeAll();
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.handle.release();
  }
}
