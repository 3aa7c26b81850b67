/**
 * The change feed of one SQLite connection: wakes this process's waiters (a reserve() with nothing ready, a result
 * wait()) within milliseconds of a commit by any process on the same file, without polling the CPU.
 *
 * How a commit is noticed:
 * - by this process, on this connection: the writer calls changed() after its transaction;
 * - by another connection: it appends to `<file>-wal`. An inotify watch on the directory (fs.watch) reports the
 *   write; `PRAGMA data_version`, which moves only when another connection committed, tells a commit from our
 *   own writes and from checkpoints. The commit becomes visible a moment after its last WAL write (the writer then
 *   updates the WAL index in shared memory, which raises no file event), so after the last event of a burst we
 *   look again a few times for ~50 ms. A slow fallback poll of data_version covers anything the watch misses.
 *
 * Invariants: listeners are called asynchronously (never inside the writer's transaction), coalesced (one call per
 * turn of the event loop however many commits landed), and may be woken spuriously: they re-check their condition.
 * The watch and the poll run only while someone listens (and for a short linger after), so a busy process that
 * never waits pays nothing for another process's writes. Tables touched: none.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Db } from './driver.ts';

/** Fallback poll of data_version while someone waits, in case a file event is missed. */
const FALLBACK_POLL_MS = 250;
/** How long the watch stays up after the last listener left (waits come and go in a worker's loop). */
const LINGER_MS = 2_000;
/** Keep checking this long after the last file event (a commit turns visible just after its last WAL write). */
const TRAIL_MS = 50;

export class ChangeFeed {
  private readonly listeners = new Set<() => void>();
  private readonly base: string;
  private watcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private version = -1;
  private emitScheduled = false;
  private checkScheduled = false;
  private trailTimer: NodeJS.Timeout | null = null;
  private lastEventAt = 0;
  private closed = false;

  /** `onCommit` hears of every changed() (stores/sqlite/space.ts watches the log's size after commits). */
  constructor(private readonly db: Db, private readonly file: string, private readonly onCommit?: () => void) {
    this.base = basename(file);
  }

  /** Call `listener` after commits until the returned function is called. */
  subscribe(listener: () => void): () => void {
    if (this.closed) return () => {};
    this.listeners.add(listener);
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && !this.closed && !this.lingerTimer) {
        this.lingerTimer = setTimeout(() => {
          this.lingerTimer = null;
          if (this.listeners.size === 0) this.stop();
        }, LINGER_MS);
        this.lingerTimer.unref();
      }
    };
  }

  /** This connection committed something others may wait for. */
  changed(): void {
    this.onCommit?.();
    this.emitSoon();
  }

  private start(): void {
    if (this.poller || this.closed) return;
    this.version = this.readVersion();
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, name) => {
        if (name === null || String(name).startsWith(this.base)) this.onFileEvent();
      });
      this.watcher.on('error', () => this.dropWatcher());
    } catch {
      this.watcher = null; // no inotify (limit reached, odd file system): the poll still works, only slower
    }
    this.poller = setInterval(() => this.check(), FALLBACK_POLL_MS);
    this.poller.unref();
  }

  private onFileEvent(): void {
    this.lastEventAt = performance.now();
    this.checkSoon();
    this.trailTimer ??= setTimeout(() => this.trail(), 2);
  }

  /** Look again after a burst of file events until they have been quiet for TRAIL_MS. */
  private trail(): void {
    this.trailTimer = null;
    this.check();
    const quiet = performance.now() - this.lastEventAt;
    if (quiet < TRAIL_MS && this.poller) this.trailTimer = setTimeout(() => this.trail(), quiet < 5 ? 5 : 20);
  }

  private dropWatcher(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  private stop(): void {
    this.dropWatcher();
    if (this.trailTimer) clearTimeout(this.trailTimer);
    this.trailTimer = null;
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  private readVersion(): number {
    try {
      return Number(this.db.pragma('data_version', { simple: true }));
    } catch {
      return -1; // closed under us: close() is on its way
    }
  }

  private checkSoon(): void {
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      this.check();
    });
  }

  private check(): void {
    if (this.closed || !this.db.open) return;
    const v = this.readVersion();
    if (v !== this.version) {
      this.version = v;
      this.emitSoon();
    }
  }

  private emitSoon(): void {
    if (this.emitScheduled || this.listeners.size === 0) return;
    this.emitScheduled = true;
    setImmediate(() => {
      this.emitScheduled = false;
      for (const l of [...this.listeners]) l();
    });
  }

  close(): void {
    this.closed = true;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.stop();
    this.listeners.clear();
  }
}
