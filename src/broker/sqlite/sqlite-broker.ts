/**
 * The SQLite broker (`sqlite://<path>`): the broker contract (broker.ts) in one file that several processes on one
 * machine share. Features: priority bands and FIFO like kombu on Redis, batch reservations with leases, renewal and
 * recovery, requeue to the front, ETA parking, dead letters, purge, worker heartbeats, revokes, beat store. No visibility
 * timeout of its own: every reservation here has a lease (only celeriac workers consume a SQLite file).
 *
 * Semantics are those of the Redis scripts (redis/lua/*.lua), each operation one IMMEDIATE transaction:
 * - reserve: band-major over the given queues (band 0 of every queue, then band 3, …; the caller's queue order
 *   within a band; lowest seq first), each row marked reserved with its delivery tag and a lease; a row whose tag
 *   cannot be read is moved to the dead letters and reported as rejected (reserve-one.lua).
 * - requeue / recover / promote put rows at the front of their queue and band (MIN(seq) - 1), the first of a batch
 *   frontmost; requeue and recover mark them redelivered (restore.lua).
 * - Waiting (the loop of stores/reserve-wait.ts): when nothing is ready, reserve() listens to the file's change
 *   feed (stores/sqlite/notify.ts) and tries again on every commit, so a message published by any process is taken
 *   within milliseconds; interrupt() ends the wait.
 * - Remote control and worker events (`control`, control.ts): requests, replies and events are rows of the same
 *   file, read on the same change feed, so `celeriac inspect`/`control`/`revoke --terminate` reach every worker.
 * Tables: see schema.ts.
 */
import type { BeatStore, Broker, BrokerOptions, DeadLetter, Delivery, OutgoingMessage, ReserveResult, WorkerPresence } from '../broker.ts';
import {
  lazyImmediate, openStore, sqliteDisplayUrl, sqliteFailure, sqlitePathFromUrl,
  type Db, type OpenOptions, type SharedDatabase,
} from '../../stores/sqlite/database.ts';
import { SqliteRates } from './rate.ts';
import type { RateTurn } from '../../stores/rate.ts';
import { brokerStatements, createBrokerSchema, type BrokerStatements, type DeadLetterRow, type MessageRow } from './schema.ts';
import { redelivered, priorityBand, PRIORITY_BANDS, readDeliveryTag } from '../envelope.ts';
import { sqliteBeatStore } from './beat-store.ts';
import { SqliteControl } from './control.ts';
import {
  DEAD_LETTERS_KEPT, DEAD_LETTERS_LIMIT, MAX_MESSAGE_BYTES, PROMOTE_BATCH, RECOVER_BATCH, REVOKE_EXPIRES_MS, REVOKES_MAX,
} from '../../stores/limits.ts';
import { deadLetterEntry, headerTaskId, parseDeadLetter, tooBigReason, type DeadLetter as Entry } from '../../stores/dead-letter.ts';
import { PendingWaits, reserveOrWait } from '../../stores/reserve-wait.ts';
import { closedError } from '../../stores/errors.ts';

const empty = (): ReserveResult => ({ deliveries: [], rejected: [] });

/** A row of celeriac_dead_letters as the entry it was built from; rows written before size/sha1 existed kept all. */
function readDeadLetterRow(r: DeadLetterRow): DeadLetter {
  if (r.size === null || r.sha1 === null) return parseDeadLetter(JSON.stringify(r), 'celeriac_dead_letters');
  return { reason: r.reason, queue: r.queue, raw: r.raw, at: r.at, size: r.size, sha1: r.sha1, truncated: r.truncated === 1 };
}

export type SqliteBrokerOptions = OpenOptions;

export class SqliteBroker implements Broker {
  readonly displayUrl: string;
  private readonly handle: SharedDatabase;
  private readonly db: Db;
  private readonly s: BrokerStatements;
  /** Remote control and worker events between the processes on this file. */
  readonly control: SqliteControl;
  /** Pending waits of reserve(), ended by interrupt(). */
  private readonly waits = new PendingWaits();
  private closed = false;

  constructor(url: string, private readonly options: BrokerOptions, o: SqliteBrokerOptions = {}) {
    const file = sqlitePathFromUrl(url);
    this.displayUrl = sqliteDisplayUrl(file);
    this.handle = openStore(file, o);
    this.db = this.handle.db;
    try {
      createBrokerSchema(this.db);
      this.s = brokerStatements(this.db);
      this.control = new SqliteControl(this.handle, (what, fn) => this.use(what, fn));
    } catch (err) {
      // E_CONNECTION, or E_BROKER_FULL when the disk is full (before release: the connection checkpoints its log)
      const failure = sqliteFailure(file, 'create the broker tables in', err);
      this.handle.release();
      throw failure;
    }
  }

  private check(): void {
    if (this.closed) throw closedError('broker', this.displayUrl);
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

  private changed(): void {
    this.handle.feed.changed();
  }

  async declareQueues(_queues: string[]): Promise<void> {
    // queues exist by their messages; there are no bindings to record
  }

  /** Insert messages (inside a caller's transaction): ready at the back of their bands, or parked until dueAt. */
  private enqueue(messages: OutgoingMessage[], now: number): void {
    const parked = (m: OutgoingMessage) => m.dueAt !== undefined && m.dueAt > now;
    const ready = messages.filter((m) => !parked(m)).length;
    let seq = ready > 0 ? this.s.bumpSeq.get(ready)!.value - ready : 0;
    for (const m of messages) {
      const band = priorityBand(m.priority);
      if (parked(m)) this.s.insertParked.run(m.queue, band, m.raw, Math.round(m.dueAt!));
      else this.s.insertReady.run(m.queue, band, ++seq, m.raw);
    }
  }

  private readonly publishTx = this.immediate((messages: OutgoingMessage[], now: number) => this.enqueue(messages, now));

  async publish(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return this.check();
    this.use('publish to', () => this.publishTx(messages, Date.now()));
    this.changed();
  }

  /** Put a row back at the front of its queue and band (inside a caller's transaction). */
  private toFront(row: MessageRow, raw: string): void {
    const min = this.s.frontSeq.get(row.queue, row.band);
    this.s.putBack.run(min === null || min === undefined ? 0 : min - 1, raw, row.id);
  }

  private readonly reserveTx = this.immediate((queues: string[], max: number, now: number): ReserveResult => {
    const out = empty();
    const leaseUntil = now + this.options.leaseTimeout * 1000;
    let n = 0;
    for (const band of PRIORITY_BANDS) {
      for (const queue of queues) {
        if (n >= max) return out;
        for (const row of this.s.nextReady.all(queue, band, max - n)) {
          n++;
          const size = Buffer.byteLength(row.raw);
          const maxBytes = this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
          if (size > maxBytes) {
            // refused before anything decodes it; the worker gets only what the dead letter keeps
            const entry = deadLetterEntry(tooBigReason(size, maxBytes), queue, row.raw, now);
            this.s.deleteRow.run(row.id);
            this.addDeadLetter(entry);
            const taskId = headerTaskId(row.raw);
            out.rejected.push({ raw: entry.raw, queue, reason: entry.reason, ...(taskId ? { taskId } : {}) });
            continue;
          }
          const read = readDeliveryTag(row.raw);
          if (read.tag !== undefined) {
            this.s.markReserved.run(read.tag, leaseUntil, now, row.id);
            out.deliveries.push({ tag: read.tag, raw: row.raw, queue });
          } else {
            this.s.deleteRow.run(row.id);
            this.addDeadLetter(deadLetterEntry(read.reason, queue, row.raw, now));
            out.rejected.push({ raw: row.raw, queue, reason: read.reason });
          }
        }
      }
    }
    return out;
  });

  /** An IMMEDIATE transaction (stores/sqlite/database.ts lazyImmediate). */
  private immediate<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return lazyImmediate(() => this.db, fn);
  }

  /** One attempt: a cheap read first, so an empty queue never takes the write lock. */
  private reserveOnce(queues: string[], max: number): ReserveResult {
    return this.use('reserve from', () => {
      if (max <= 0 || !queues.some((q) => this.s.anyReady.get(q) !== undefined)) return empty();
      return this.reserveTx(queues, max, Date.now());
    });
  }

  async reserve(queues: string[], max: number, waitMs: number): Promise<ReserveResult> {
    this.check();
    return reserveOrWait({
      tryReserve: () => this.reserveOnce(queues, max),
      onChange: (wake) => this.handle.feed.subscribe(wake),
      waitMs,
      waits: this.waits,
      closed: () => this.closed,
    });
  }

  async ack(tags: string[]): Promise<void> {
    this.use('ack messages in', () => {
      if (tags.length > 0) this.s.ack.run(JSON.stringify(tags));
    });
  }

  async renew(tags: string[]): Promise<void> {
    this.use('renew leases in', () => {
      if (tags.length > 0) this.s.renew.run(Date.now() + this.options.leaseTimeout * 1000, JSON.stringify(tags));
    });
  }

  private readonly requeueTx = this.immediate((tags: string[]): number => {
    let n = 0;
    // the first of the batch ends up frontmost
    for (const tag of [...tags].reverse()) {
      for (const row of this.s.reservedByTag.all(tag).reverse()) {
        this.toFront(row, redelivered(row.raw, false));
        n++;
      }
    }
    return n;
  });

  async requeue(deliveries: Delivery[]): Promise<void> {
    if (this.use('requeue messages in', () => (deliveries.length === 0 ? 0 : this.requeueTx(deliveries.map((d) => d.tag)))) > 0) {
      this.changed();
    }
  }

  private readonly recoverTx = this.immediate((now: number): number => {
    const rows = this.s.expired.all(now, RECOVER_BATCH);
    for (const row of [...rows].reverse()) this.toFront(row, redelivered(row.raw, true));
    return rows.length;
  });

  async recover(): Promise<number> {
    const n = this.use('recover messages in', () => {
      const now = Date.now();
      return this.s.anyExpired.get(now) === undefined ? 0 : this.recoverTx(now);
    });
    if (n > 0) this.changed();
    return n;
  }

  /** Keep an entry in the dead-letter list (inside a caller's transaction). */
  private addDeadLetter(e: Entry): void {
    const list = this.options.deadLetterQueue;
    this.s.addDeadLetter.run(list, e.reason, e.queue, e.raw, e.at, e.size, e.sha1, e.truncated ? 1 : 0);
    this.s.trimDeadLetters.run(list, list, this.options.deadLetterLimit ?? DEAD_LETTERS_KEPT);
  }

  private readonly deadLetterTx = this.immediate((d: Delivery, entry: Entry) => {
    for (const row of this.s.reservedByTag.all(d.tag)) this.s.deleteRow.run(row.id);
    this.addDeadLetter(entry);
  });

  async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    this.use('dead-letter a message in', () => this.deadLetterTx(delivery, deadLetterEntry(reason, delivery.queue, delivery.raw)));
  }

  async deadLetters(limit = DEAD_LETTERS_LIMIT): Promise<DeadLetter[]> {
    return this.use('read dead letters from', () => this.s.deadLetters.all(this.options.deadLetterQueue, limit).map(readDeadLetterRow));
  }

  private readonly purgeTx = this.immediate((queues: string[]): number =>
    queues.reduce((sum, q) => sum + this.s.purge.run(q).changes, 0));

  async purge(queues: string[]): Promise<number> {
    return this.use('purge queues in', () => this.purgeTx([...new Set(queues)]));
  }

  async queueLength(queue: string): Promise<number> {
    return this.use('count messages in', () => Number(this.s.queueLength.get(queue) ?? 0));
  }

  async defer(delivery: Delivery, dueAt: number): Promise<void> {
    this.use('park a message in', () => this.s.park.run(Math.round(dueAt), delivery.tag));
  }

  private readonly promoteTx = this.immediate((now: number, limit: number): number => {
    const rows = this.s.due.all(now, limit);
    for (const row of [...rows].reverse()) this.toFront(row, row.raw);
    return rows.length;
  });

  async promoteDue(limit = PROMOTE_BATCH): Promise<{ moved: number; nextDueAt: number | null }> {
    return this.use('promote messages in', () => {
      const now = Date.now();
      const first = this.s.nextDue.get();
      if (first === null || first === undefined || first > now) return { moved: 0, nextDueAt: first ?? null };
      const moved = this.promoteTx(now, limit);
      if (moved > 0) this.changed();
      return { moved, nextDueAt: this.s.nextDue.get() ?? null };
    });
  }

  async heartbeat(instance: string, ttlMs: number): Promise<void> {
    this.use('record a heartbeat in', () => this.s.heartbeat.run(instance, Date.now() + Math.round(ttlMs)));
  }

  async workers(): Promise<WorkerPresence[]> {
    return this.use('read workers from', () =>
      this.s.workers.all(Date.now()).map((r) => ({ instance: r.instance, aliveUntil: r.alive_until })));
  }

  /** The last worker out puts every parked message back (the same rule as redis/lua/leave.lua). */
  private readonly leaveTx = this.immediate((instance: string, now: number) => {
    this.s.leave.run(instance, now);
    const othersAlive = Number(this.s.workersAlive.get());
    if (othersAlive > 0) return { othersAlive, unparked: 0 };
    const rows = this.s.allParked.all();
    for (const row of [...rows].reverse()) this.toFront(row, row.raw);
    return { othersAlive: 0, unparked: rows.length };
  });

  async leave(instance: string): Promise<{ othersAlive: number; unparked: number }> {
    const r = this.use('withdraw a worker from', () => this.leaveTx(instance, Date.now()));
    if (r.unparked > 0) this.changed();
    return r;
  }

  private readonly revokeTx = this.immediate((ids: string[], now: number, until: number) => {
    for (const id of ids) this.s.revoke.run(id, until);
    this.s.pruneRevokes.run(now);
    this.s.trimRevokes.run(this.options.revokesMax ?? REVOKES_MAX);
  });

  /** Made on first use, so that only apps with rate limits create its table. */
  private rates: SqliteRates | null = null;

  async rateAcquire(name: string, intervalMs: number, aheadMs: number): Promise<RateTurn> {
    return this.use('take a rate-limit turn in', () => (this.rates ??= new SqliteRates(this.db)).acquire(name, intervalMs, aheadMs));
  }

  async storeRevokes(ids: string[], expiresInMs = REVOKE_EXPIRES_MS): Promise<void> {
    this.use('store revokes in', () => {
      const now = Date.now();
      this.revokeTx([...new Set(ids)], now, now + Math.round(expiresInMs));
    });
  }

  async revoked(ids: string[]): Promise<Map<string, number>> {
    return this.use('read revokes from', () => {
      if (ids.length === 0) return new Map();
      return new Map(this.s.revoked.all(Date.now(), JSON.stringify(ids)).map((r) => [r.task_id, r.expires_at]));
    });
  }

  async liveRevokes(): Promise<Map<string, number>> {
    return this.use('read revokes from', () =>
      new Map(this.s.liveRevokes.all(Date.now()).map((r) => [r.task_id, r.expires_at])));
  }

  beatStore(name: string): BeatStore {
    return sqliteBeatStore(this.db, this.s, name, (m) => this.enqueue([m], Date.now()), () => this.changed(),
      (fn) => this.use('use the beat store in', fn));
  }

  interrupt(): void {
    this.waits.interrupt();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.interrupt();
    this.control.close();
    this.handle.release();
  }
}
