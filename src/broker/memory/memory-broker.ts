/**
 * The in-process broker (`memory://` or `memory://<name>`): the broker contract (broker.ts) for single-process use
 * and for users' own tests, with the same semantics as redis:// and sqlite:// — priority bands, FIFO, batch
 * reservations with leases, renewal and recovery, requeue to the front marked redelivered, ETA parking, dead
 * letters (also for messages whose delivery tag cannot be read), purge, worker heartbeats, revokes and a beat store.
 * Nothing survives the process.
 *
 * Waiting (the loop of stores/reserve-wait.ts): a reserve() with nothing ready listens to the store (store.ts) and
 * tries again after every change, so a publish from anywhere in the process is taken on the next turn of the event
 * loop; interrupt() ends it.
 * State: see store.ts.
 */
import type { BeatStore, Broker, BrokerOptions, DeadLetter, Delivery, OutgoingMessage, ReserveResult, WorkerPresence } from '../broker.ts';
import { redelivered, priorityBand, PRIORITY_BANDS, readDeliveryTag } from '../envelope.ts';
import { memoryStore, type MemoryStore, type StoredMessage } from './store.ts';
import { memoryBeatStore } from './beat-store.ts';
import {
  DEAD_LETTERS_KEPT, DEAD_LETTERS_LIMIT, MAX_MESSAGE_BYTES, PROMOTE_BATCH, RECOVER_BATCH, REVOKE_EXPIRES_MS, REVOKES_MAX,
  pruneRevokes,
} from '../../stores/limits.ts';
import { deadLetterEntry, headerTaskId, tooBigReason, type DeadLetter as Entry } from '../../stores/dead-letter.ts';
import { PendingWaits, reserveOrWait } from '../../stores/reserve-wait.ts';
import { closedError } from '../../stores/errors.ts';
import { rateStep, type RateTurn } from '../../stores/rate.ts';

const empty = (): ReserveResult => ({ deliveries: [], rejected: [] });

export class MemoryBroker implements Broker {
  readonly displayUrl: string;
  private readonly store: MemoryStore;
  private readonly waits = new PendingWaits();
  private closed = false;

  constructor(url: string, private readonly options: BrokerOptions) {
    this.displayUrl = url;
    this.store = memoryStore(url);
  }

  private check(): void {
    if (this.closed) throw closedError('broker', this.displayUrl);
  }

  private get leaseMs(): number {
    return this.options.leaseTimeout * 1000;
  }

  async declareQueues(queues: string[]): Promise<void> {
    for (const q of queues) this.store.band(q, 0);
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    this.check();
    const now = Date.now();
    for (const m of messages) {
      const stored = { queue: m.queue, band: priorityBand(m.priority), raw: m.raw };
      if (m.dueAt && m.dueAt > now) this.store.parked.push({ ...stored, dueAt: Math.round(m.dueAt) });
      else this.store.pushBack(stored);
    }
    if (messages.length > 0) this.store.changed();
  }

  private reserveOnce(queues: string[], max: number): ReserveResult {
    const out = empty();
    const now = Date.now();
    let n = 0;
    for (const band of PRIORITY_BANDS) {
      for (const queue of queues) {
        const list = this.store.band(queue, band);
        while (n < max && list.length > 0) {
          const m = list.shift()!;
          n++;
          const size = Buffer.byteLength(m.raw);
          const maxBytes = this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
          if (size > maxBytes) {
            // refused before anything decodes it; the worker gets only what the dead letter keeps
            const entry = deadLetterEntry(tooBigReason(size, maxBytes), queue, m.raw, now);
            this.keep(entry);
            const taskId = headerTaskId(m.raw);
            out.rejected.push({ raw: entry.raw, queue, reason: entry.reason, ...(taskId ? { taskId } : {}) });
            continue;
          }
          const read = readDeliveryTag(m.raw);
          if (read.tag !== undefined) {
            this.store.reserved.set(read.tag, { message: m, leaseUntil: now + this.leaseMs, reservedAt: now });
            out.deliveries.push({ tag: read.tag, raw: m.raw, queue });
          } else {
            this.addDeadLetter(read.reason, queue, m.raw, now);
            out.rejected.push({ raw: m.raw, queue, reason: read.reason });
          }
        }
      }
    }
    return out;
  }

  async reserve(queues: string[], max: number, waitMs: number): Promise<ReserveResult> {
    this.check();
    return reserveOrWait({
      tryReserve: () => this.reserveOnce(queues, max),
      onChange: (wake) => this.store.subscribe(wake),
      waitMs,
      waits: this.waits,
      closed: () => this.closed,
    });
  }

  async ack(tags: string[]): Promise<void> {
    this.check();
    for (const t of tags) this.store.reserved.delete(t);
  }

  async renew(tags: string[]): Promise<void> {
    this.check();
    const until = Date.now() + this.leaseMs;
    for (const t of tags) {
      const r = this.store.reserved.get(t);
      if (r) r.leaseUntil = until;
    }
  }

  /** End these reservations and put their messages in front, marked redelivered; returns how many. */
  private restore(tags: string[], recovered: boolean): number {
    const back: StoredMessage[] = [];
    for (const t of tags) {
      const r = this.store.reserved.get(t);
      if (!r) continue;
      this.store.reserved.delete(t);
      back.push({ ...r.message, raw: redelivered(r.message.raw, recovered) });
    }
    this.store.pushFront(back);
    if (back.length > 0) this.store.changed();
    return back.length;
  }

  async requeue(deliveries: Delivery[]): Promise<void> {
    this.check();
    this.restore(deliveries.map((d) => d.tag), false);
  }

  async recover(): Promise<number> {
    this.check();
    const now = Date.now();
    const expired = [...this.store.reserved]
      .filter(([, r]) => r.leaseUntil <= now)
      .sort(([, a], [, b]) => a.reservedAt - b.reservedAt)
      .slice(0, RECOVER_BATCH);
    return this.restore(expired.map(([tag]) => tag), true);
  }

  private addDeadLetter(reason: string, queue: string, raw: string, now = Date.now()): void {
    this.keep(deadLetterEntry(reason, queue, raw, now));
  }

  /** Newest first; the list keeps `deadLetterLimit` entries. */
  private keep(entry: Entry): void {
    const list = this.store.deadLetters(this.options.deadLetterQueue);
    list.unshift(entry);
    const kept = this.options.deadLetterLimit ?? DEAD_LETTERS_KEPT;
    if (list.length > kept) list.length = kept;
  }

  async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    this.check();
    this.store.reserved.delete(delivery.tag);
    this.addDeadLetter(reason, delivery.queue, delivery.raw);
  }

  async deadLetters(limit = DEAD_LETTERS_LIMIT): Promise<DeadLetter[]> {
    this.check();
    return this.store.deadLetters(this.options.deadLetterQueue).slice(0, limit).map((d) => ({ ...d }));
  }

  async purge(queues: string[]): Promise<number> {
    this.check();
    let n = 0;
    for (const q of new Set(queues)) {
      for (const band of PRIORITY_BANDS) n += this.store.band(q, band).splice(0).length;
    }
    return n;
  }

  async queueLength(queue: string): Promise<number> {
    this.check();
    let n = 0;
    for (const band of PRIORITY_BANDS) n += this.store.band(queue, band).length;
    return n;
  }

  async defer(delivery: Delivery, dueAt: number): Promise<void> {
    this.check();
    const r = this.store.reserved.get(delivery.tag);
    if (!r) return;
    this.store.reserved.delete(delivery.tag);
    this.store.parked.push({ ...r.message, dueAt: Math.round(dueAt) });
  }

  async promoteDue(limit = PROMOTE_BATCH): Promise<{ moved: number; nextDueAt: number | null }> {
    this.check();
    const now = Date.now();
    const due = this.store.parked.filter((p) => p.dueAt <= now).sort((a, b) => a.dueAt - b.dueAt).slice(0, limit);
    if (due.length > 0) {
      const moving = new Set(due);
      this.store.parked = this.store.parked.filter((p) => !moving.has(p));
      this.store.pushFront(due.map(({ queue, band, raw }) => ({ queue, band, raw })));
      this.store.changed();
    }
    const next = this.store.parked.reduce<number | null>((min, p) => (min === null || p.dueAt < min ? p.dueAt : min), null);
    return { moved: due.length, nextDueAt: next };
  }

  async heartbeat(instance: string, ttlMs: number): Promise<void> {
    this.check();
    this.store.workers.set(instance, Date.now() + Math.round(ttlMs));
  }

  async workers(): Promise<WorkerPresence[]> {
    this.check();
    const now = Date.now();
    return [...this.store.workers].filter(([, until]) => until > now).map(([instance, aliveUntil]) => ({ instance, aliveUntil }));
  }

  /** The last worker out puts every parked message back (the same rule as redis/lua/leave.lua). */
  async leave(instance: string): Promise<{ othersAlive: number; unparked: number }> {
    this.check();
    const now = Date.now();
    this.store.workers.delete(instance);
    for (const [id, until] of [...this.store.workers]) if (until <= now) this.store.workers.delete(id);
    if (this.store.workers.size > 0) return { othersAlive: this.store.workers.size, unparked: 0 };
    const parked = this.store.parked.sort((a, b) => a.dueAt - b.dueAt);
    this.store.parked = [];
    this.store.pushFront(parked.map(({ queue, band, raw }) => ({ queue, band, raw })));
    if (parked.length > 0) this.store.changed();
    return { othersAlive: 0, unparked: parked.length };
  }

  async rateAcquire(name: string, intervalMs: number, aheadMs: number): Promise<RateTurn> {
    this.check();
    const { turn, nextFree } = rateStep(this.store.rates.get(name) ?? null, Date.now(), intervalMs, aheadMs);
    if (nextFree !== null) this.store.rates.set(name, nextFree);
    return turn;
  }

  async storeRevokes(ids: string[], expiresInMs = REVOKE_EXPIRES_MS): Promise<void> {
    this.check();
    const now = Date.now();
    const until = now + Math.round(expiresInMs);
    const held = this.store.revoked;
    for (const id of ids) held.set(id, Math.max(until, held.get(id) ?? 0));
    pruneRevokes(held, now, this.options.revokesMax ?? REVOKES_MAX);
  }

  async revoked(ids: string[]): Promise<Map<string, number>> {
    this.check();
    const now = Date.now();
    const out = new Map<string, number>();
    for (const id of ids) {
      const until = this.store.revoked.get(id);
      if (until !== undefined && until > now) out.set(id, until);
    }
    return out;
  }

  async liveRevokes(): Promise<Map<string, number>> {
    this.check();
    const now = Date.now();
    return new Map([...this.store.revoked].filter(([, until]) => until > now));
  }

  beatStore(name: string): BeatStore {
    return memoryBeatStore(this.store, name, (m) => {
      this.store.pushBack({ queue: m.queue, band: priorityBand(m.priority), raw: m.raw });
      this.store.changed();
    }, () => this.check());
  }

  interrupt(): void {
    this.waits.interrupt();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.interrupt();
  }
}
