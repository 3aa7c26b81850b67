/**
 * Celery's remote control (pidbox) and worker events on the SQLite file (docs/wire-format.md §9.6), so `celeriac
 * inspect`, `celeriac control`, `revoke --terminate` and `Control` reach every celeriac worker on the file, from any
 * process on the machine. The messages are Celery's own envelopes (protocol/control.ts); only the transport differs
 * from Redis (redis/control.ts):
 *
 *   celeriac_pidbox          a request: one row, read by every listener (each remembers the last id it saw)
 *   celeriac_pidbox_replies  a reply: one row for the caller's oid (`reply_to.routing_key`), which takes (deletes) it
 *   celeriac_events          worker-online/-heartbeat/-offline, for a monitor to read; nobody waits on them
 *
 * Wake-ups go through the file's change feed (stores/sqlite/notify.ts): a listener or a caller waiting for replies
 * reads again after every commit by any process, so a request is answered within milliseconds; a reply wait also
 * looks again every REPLY_POLL_MS whatever the feed says. Everything is bounded: requests and replies nobody took
 * are dropped PIDBOX_KEEP_MS after they were written, events past EVENTS_KEPT or EVENTS_KEEP_MS, on every write.
 * Python Celery cannot read a SQLite file, so only celeriac processes are on this channel (`pythonPeers` false).
 * Tables: schema.ts.
 */
import type { ControlChannel } from '../broker.ts';
import { lazyImmediate, type SharedDatabase } from '../../stores/sqlite/database.ts';
import { controlStatements, type ControlStatements } from './schema.ts';

/** How long a request or an untaken reply stays in the file (a caller waits seconds at most). */
export const PIDBOX_KEEP_MS = 60_000;
/** Worker events kept: at most this many, and none older than EVENTS_KEEP_MS. */
export const EVENTS_KEPT = 1000;
export const EVENTS_KEEP_MS = 5 * 60_000;
/** A caller waiting for replies looks again at least this often, in case a wake-up is missed. */
const REPLY_POLL_MS = 250;
/** Requests a listener reads per query (it reads again while a page comes back full). */
const REQUEST_PAGE = 100;

/** The broker's guard: E_CLOSED after close(), any SQLite failure as one coded error naming the file and `what`. */
export type Use = <T>(what: string, fn: () => T) => T;

export class SqliteControl implements ControlChannel {
  readonly pythonPeers = false;
  private readonly s: ControlStatements;
  /** Ends the pending reply waits (close()). */
  private readonly waits = new Set<() => void>();
  private closed = false;

  constructor(private readonly handle: SharedDatabase, private readonly use: Use) {
    this.s = controlStatements(handle.db);
  }

  private readonly requestTx = lazyImmediate(() => this.handle.db, (raw: string, now: number) => {
    this.s.pruneRequests.run(now - PIDBOX_KEEP_MS);
    this.s.addRequest.run(now, raw);
  });

  private readonly replyTx = lazyImmediate(() => this.handle.db, (key: string, raw: string, now: number) => {
    this.s.pruneReplies.run(now - PIDBOX_KEEP_MS);
    this.s.addReply.run(key, now, raw);
  });

  private readonly eventTx = lazyImmediate(() => this.handle.db, (key: string, raw: string, now: number) => {
    this.s.addEvent.run(key, now, raw);
    this.s.pruneEvents.run(now - EVENTS_KEEP_MS, EVENTS_KEPT);
  });

  async listen(handler: (raw: string) => void): Promise<() => Promise<void>> {
    let last = this.use('listen for remote control in', () => Number(this.s.lastRequest.get() ?? 0));
    let stopped = false;
    const read = () => {
      if (stopped || this.closed) return;
      let rows: Array<{ id: number; raw: string }>;
      do {
        try {
          rows = this.use('read remote control requests from', () => this.s.requestsAfter.all(last, REQUEST_PAGE));
        } catch {
          return; // the file is busy or gone for a moment: the next commit (or the feed's poll) reads again
        }
        for (const r of rows) {
          last = r.id;
          try {
            handler(r.raw);
          } catch {
            // the handler reports its own failures; one bad request must not hide the next
          }
        }
      } while (rows.length === REQUEST_PAGE && !stopped);
    };
    const unsubscribe = this.handle.feed.subscribe(read);
    return async () => {
      stopped = true;
      unsubscribe();
    };
  }

  async reply(routingKey: string, raw: string): Promise<void> {
    this.use('reply to remote control in', () => this.replyTx(routingKey, raw, Date.now()));
    this.handle.feed.changed();
  }

  async request(raw: string, replyKey: string | null, timeoutMs: number, expected?: number): Promise<string[]> {
    const start = Date.now();
    this.use('broadcast remote control in', () => this.requestTx(raw, start));
    this.handle.feed.changed();
    if (!replyKey) return [];
    const replies: string[] = [];
    const take = () => {
      const rows = this.use('read remote control replies from', () =>
        this.s.anyReply.get(replyKey) === undefined ? [] : this.s.takeReplies.all(replyKey));
      for (const r of rows.sort((a, b) => a.id - b.id)) replies.push(r.raw);
    };
    // EVERY_LISTENER (a negative count): the file cannot tell how many listen, so the timeout decides
    const enough = () => expected !== undefined && expected >= 0 && replies.length >= expected;
    let wake: (() => void) | null = null;
    const unsubscribe = this.handle.feed.subscribe(() => wake?.());
    const deadline = start + timeoutMs;
    try {
      take();
      while (!enough() && !this.closed) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            wake = null;
            this.waits.delete(done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, REPLY_POLL_MS));
          wake = done;
          this.waits.add(done);
        });
        if (!this.closed) take();
      }
    } finally {
      unsubscribe();
    }
    return replies;
  }

  async event(routingKey: string, raw: string): Promise<void> {
    // no wake-up: nobody in this process waits for events
    this.use('record a worker event in', () => this.eventTx(routingKey, raw, Date.now()));
  }

  /** The broker closes: pending reply waits end with what they have. */
  close(): void {
    this.closed = true;
    for (const done of [...this.waits]) done();
  }
}
