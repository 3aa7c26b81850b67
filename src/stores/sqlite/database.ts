/**
 * sqlite:// URLs and the one connection per database file per process that the SQLite broker and the SQLite result
 * backend share (the backend imports this module: layering downward, not a sibling implementation).
 *
 * URLs: `sqlite://<relative path>` (`sqlite://.celeriac/celeriac.db`, relative to the working directory),
 * `sqlite:///<relative path>` (SQLAlchemy's spelling of the same) and `sqlite:////<absolute path>`.
 * The parent directory is created on first use.
 *
 * Invariants:
 * - One better-sqlite3 connection per resolved file per process, reference-counted: the broker and backend of an
 *   app (and several apps in one process) share it and its change feed; it closes with its last user.
 * - WAL journal (readers never block the writer), synchronous=NORMAL, a busy timeout so several processes take
 *   turns at the write lock instead of failing; every write is one IMMEDIATE transaction (callers' duty).
 * - A full disk is E_BROKER_FULL, not E_CONNECTION (sqliteFailure), and each connection checkpoints its file's
 *   write-ahead log to give the space back, after a disk-full error and while space is low (space.ts).
 * - Tables touched: none here; each user creates its own (broker: schema.ts; backend: its own schema).
 */
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';
import { ChangeFeed } from './notify.ts';
import { diskFullError, isDiskFull, SpaceKeeper, spaceOf } from './space.ts';
import { sqliteDriver, type Db } from './driver.ts';

export type { Db } from './driver.ts';

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

export interface SharedDatabase {
  readonly file: string;
  readonly db: Db;
  /** Wakes waiters when this process or another one commits to the file. */
  readonly feed: ChangeFeed;
  /** Give up this reference; the connection closes with the last one. */
  release(): void;
}

/** The file a sqlite:// URL names, resolved against the working directory. */
export function sqlitePathFromUrl(url: string): string {
  const m = /^sqlite:\/\/(.*)$/i.exec(url);
  if (!m) throw new CeleriacError(ErrorCode.BadUrl, `not a SQLite URL: "${url}" (expected sqlite://path/to/file.db)`);
  let path = m[1].replace(/[?#].*$/, '');
  if (path.startsWith('//')) path = path.slice(1); // sqlite:////abs/path.db
  else if (path.startsWith('/')) path = path.slice(1); // sqlite:///relative.db (SQLAlchemy)
  if (path === '' || path.endsWith('/')) {
    throw new CeleriacError(ErrorCode.BadUrl,
      `SQLite URL "${url}" names no file (expected e.g. sqlite://.celeriac/celeriac.db or sqlite:////var/lib/app.db)`);
  }
  return isAbsolute(path) ? resolve(path) : resolve(process.cwd(), path);
}

/**
 * A SQLite failure as one clear coded error naming the file. A full disk (SQLITE_FULL, or an I/O error with next to
 * nothing free) is E_BROKER_FULL, `cannot <what> SQLite database <file>: the disk is full (…)` with the free space,
 * and a connection to the file checkpoints its log at once (space.ts). Anything else (locked past the busy timeout,
 * not a database…) is E_CONNECTION, `cannot <what> SQLite database <file> (<cause>)`. A CeleriacError passes
 * unchanged.
 */
export function sqliteFailure(file: string, what: string, err: unknown): CeleriacError {
  if (err instanceof CeleriacError) return err;
  if (isDiskFull(err, file)) {
    const keeper = keepers.get(file)?.values().next().value;
    return keeper ? keeper.diskFull(what, err) : diskFullError(file, what, err, null, spaceOf(dirname(file)), null);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CeleriacError(ErrorCode.Connection, `cannot ${what} SQLite database ${file} (${message})`, { cause: err });
}

/**
 * `fn` as an IMMEDIATE transaction on `db()`, built on first call: a class field can declare its transactions before
 * the constructor has opened the database.
 */
export function lazyImmediate<A extends unknown[], R>(db: () => Db, fn: (...args: A) => R): (...args: A) => R {
  let tx: ((...args: A) => R) | null = null;
  return (...args: A) => {
    tx ??= db().transaction(fn).immediate as unknown as (...args: A) => R;
    return tx(...args);
  };
}

interface Entry {
  db: Db;
  feed: ChangeFeed;
  keeper: SpaceKeeper;
  refs: number;
}

const open = new Map<string, Entry>();
/** Every open connection's SpaceKeeper, by file (shared and private ones): sqliteFailure finds one here. */
const keepers = new Map<string, Set<SpaceKeeper>>();

function connect(file: string): Db {
  const Database = sqliteDriver();
  let db: Db | null = null;
  try {
    mkdirSync(dirname(file), { recursive: true });
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // keep the -wal file from staying large after a burst
    db.pragma('journal_size_limit = 67108864');
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // the error below is the one to report
    }
    if (isDiskFull(err, file)) throw diskFullError(file, 'open', err, null, spaceOf(dirname(file)), null);
    throw new CeleriacError(ErrorCode.Connection, `cannot open SQLite database ${file} (${(err as Error).message})`,
      { cause: err });
  }
}

/** A connection's entry: its change feed tells its SpaceKeeper of every commit. */
function entryFor(file: string, db: Db): Entry {
  const keeper = new SpaceKeeper(db, file, BUSY_TIMEOUT_MS);
  let set = keepers.get(file);
  if (!set) keepers.set(file, (set = new Set()));
  set.add(keeper);
  return { db, feed: new ChangeFeed(db, file, () => keeper.committed()), keeper, refs: 0 };
}

/** A handle on `entry` whose release() counts once, however often its user calls it. */
function handle(file: string, entry: Entry, onLast: () => void): SharedDatabase {
  entry.refs++;
  let released = false;
  return {
    file,
    db: entry.db,
    feed: entry.feed,
    release: () => {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      onLast();
      entry.feed.close();
      entry.keeper.close();
      const set = keepers.get(file);
      set?.delete(entry.keeper);
      if (set?.size === 0) keepers.delete(file);
      entry.db.close();
    },
  };
}

/** The process's shared connection to `file` (opened on first use). */
export function openDatabase(file: string): SharedDatabase {
  let entry = open.get(file);
  if (!entry) {
    entry = entryFor(file, connect(file));
    open.set(file, entry);
  }
  return handle(file, entry, () => open.delete(file));
}

/** A connection of its own, not shared with the rest of the process (tests use it as "another process"). */
export function openPrivateDatabase(file: string): SharedDatabase {
  return handle(file, entryFor(file, connect(file)), () => {});
}

export interface OpenOptions {
  /** Open a connection of its own instead of sharing the process's (tests use it as a second process). */
  privateConnection?: boolean;
}

/** The SQLite broker's and backend's way in: the shared connection, or a private one when asked. */
export function openStore(file: string, o: OpenOptions = {}): SharedDatabase {
  return o.privateConnection ? openPrivateDatabase(file) : openDatabase(file);
}

/** The URL banners show: where the file really is, absolute. */
export function sqliteDisplayUrl(file: string): string {
  return `sqlite:///${resolve(file)}`;
}
