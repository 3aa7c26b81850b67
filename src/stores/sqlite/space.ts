/**
 * A full disk under a SQLite file: telling it from other failures, saying so (E_BROKER_FULL, the code of a Redis
 * out of memory too, with the file, the space free and the least a write needs), and giving the write-ahead log's
 * space back so the store recovers by itself.
 *
 * Why the log: in WAL mode every commit appends to `<file>-wal`, and SQLite's automatic checkpoint (which lets the
 * log be reused from its start) waits for ~1000 pages, about 4 MB. On a small or nearly full disk the log alone
 * fills it, and then it cannot be checkpointed any more when that needs the database file to grow. So:
 * - on a disk-full error, `PRAGMA wal_checkpoint(TRUNCATE)` at once (it works whenever the database file does not
 *   need to grow much: the log is mostly rewrites of the same pages), and again with backoff until it succeeds,
 *   and at the first commit that works again (space returned);
 * - while space is low (the log is more than a quarter of what is free), the same checkpoint after commits, at most
 *   once a second, so the log never eats the last of the disk.
 * A checkpoint waits at most CHECKPOINT_BUSY_MS for other connections (it runs on the event loop), and never inside
 * a transaction. Tables touched: none.
 */
import { statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';
import type { Db } from './driver.ts';

/** How long a checkpoint waits for other connections' readers and writer before giving up for now. */
const CHECKPOINT_BUSY_MS = 100;
/** Retries of the checkpoint after a disk-full error: from this delay, doubling, up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
/** How often, at most, commits look at the free space. */
const LOW_SPACE_CHECK_MS = 1_000;
/** A log smaller than this is never worth a checkpoint of its own. */
const SMALL_WAL_BYTES = 64 * 1024;
/** An I/O error with less than this free on the file system is taken for a full disk (ENOSPC seen as SQLITE_IOERR). */
const NEARLY_FULL_BYTES = 1024 * 1024;

export interface Space {
  free: number;
  total: number;
}

/** Free (for unprivileged users) and total bytes of the file system holding `dir`; null when it cannot be read. */
export function spaceOf(dir: string): Space | null {
  try {
    const s = statfsSync(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch {
    return null;
  }
}

const sizeOf = (path: string): number | null => {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/**
 * Whether `err` means the disk under `file` is full: SQLITE_FULL, ENOSPC (Node's own file calls), or an SQLite I/O
 * error (SQLITE_IOERR_*, e.g. the shared-memory index that cannot grow) while the file system has next to nothing free.
 */
export function isDiskFull(err: unknown, file: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return true;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_IOERR')) return false;
  const space = spaceOf(dirname(file));
  return space !== null && space.free < NEARLY_FULL_BYTES;
}

/**
 * The disk-full error for `what` (`publish to`, `store results in`…): the file, the free space, the least a write
 * needs, the sizes of the database and its log, and `reclaimed` (what a checkpoint just gave back) when known.
 */
export function diskFullError(file: string, what: string, err: unknown, pageSize: number | null,
  space: Space | null, reclaimed: number | null): CeleriacError {
  const code = (err as { code?: unknown } | null)?.code;
  const cause = `${typeof code === 'string' ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`;
  const parts = [`cannot ${what} SQLite database ${file}: the disk is full (${cause}).`];
  if (space) {
    parts.push(`The file system holding it (${dirname(file)}) has ${formatBytes(space.free)} free of ${formatBytes(space.total)};`);
  } else {
    parts.push(`The free space of ${dirname(file)} cannot be read;`);
  }
  const page = pageSize ?? 4096;
  parts.push(`a write needs at least ${formatBytes(page + 24)} more (one ${page}-byte page of write-ahead log, more for` +
    ' larger messages and results).');
  const db = sizeOf(file);
  const wal = sizeOf(`${file}-wal`);
  if (db !== null) parts.push(`The database is ${formatBytes(db)}, its write-ahead log ${formatBytes(wal ?? 0)}.`);
  if (reclaimed !== null && reclaimed > 0) {
    parts.push(`A checkpoint just gave back ${formatBytes(reclaimed)} of log: try again.`);
  }
  parts.push('Free space on that disk: celeriac checkpoints the log, and workers carry on by themselves once there is room.');
  return new CeleriacError(ErrorCode.BrokerFull, parts.join(' '), { cause: err });
}

/**
 * One connection's care for the space its file takes: checkpoints after a disk-full error until one succeeds, and
 * while space is low. `committed()` is called after each commit of this connection (its change feed's changed()).
 */
export class SpaceKeeper {
  private full = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private afterCommit: NodeJS.Immediate | null = null;
  private lastLowSpaceCheck = 0;
  private closed = false;
  readonly wal: string;

  constructor(private readonly db: Db, readonly file: string, private readonly busyTimeoutMs: number) {
    this.wal = `${file}-wal`;
  }

  /** A write failed because the disk is full: the error to throw, after a first try at giving the log's space back. */
  diskFull(what: string, err: unknown): CeleriacError {
    const space = spaceOf(dirname(this.file));
    const pageSize = this.pageSize();
    const before = sizeOf(this.wal);
    let reclaimed: number | null = null;
    if (this.checkpoint()) {
      reclaimed = before === null ? null : before - (sizeOf(this.wal) ?? 0);
    } else {
      this.full = true;
      this.scheduleRetry();
    }
    return diskFullError(this.file, what, err, pageSize, space, reclaimed);
  }

  /** This connection committed: space may be back (checkpoint now), or running low (checkpoint before it runs out). */
  committed(): void {
    if (this.closed || this.afterCommit) return;
    const now = Date.now();
    if (!this.full && now - this.lastLowSpaceCheck < LOW_SPACE_CHECK_MS) return;
    // after the caller's transaction, never inside it
    this.afterCommit = setImmediate(() => {
      this.afterCommit = null;
      if (this.closed) return;
      if (this.full) {
        this.recover();
        return;
      }
      this.lastLowSpaceCheck = Date.now();
      if (this.spaceIsLow()) this.checkpoint();
    });
    this.afterCommit.unref();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.afterCommit) clearImmediate(this.afterCommit);
    this.afterCommit = null;
  }

  /** The log is worth checkpointing and takes more than a quarter of what is left on the disk. */
  private spaceIsLow(): boolean {
    const wal = sizeOf(this.wal);
    if (wal === null || wal < SMALL_WAL_BYTES) return false;
    const space = spaceOf(dirname(this.file));
    return space !== null && space.free < 4 * wal;
  }

  private recover(): void {
    if (!this.checkpoint()) return;
    this.full = false;
    this.retryDelay = RETRY_MIN_MS;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.recover();
      if (this.full) this.scheduleRetry();
    }, delay);
    this.retryTimer.unref();
  }

  private pageSize(): number | null {
    try {
      return Number(this.db.pragma('page_size', { simple: true }));
    } catch {
      return null;
    }
  }

  /**
   * Copy the log into the database and truncate it to zero bytes; true when that happened (no other connection
   * was in the way and the database file could take the pages).
   */
  private checkpoint(): boolean {
    if (this.closed || !this.db.open || this.db.inTransaction) return false;
    try {
      this.db.pragma(`busy_timeout = ${CHECKPOINT_BUSY_MS}`);
      const rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      return rows[0]?.busy === 0;
    } catch {
      return false; // still no room for the database to take the pages, or closing: a later try may do
    } finally {
      try {
        this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      } catch {
        // closed under us
      }
    }
  }
}
