/**
 * The state behind `memory://<name>`: one store per name per process, shared by every broker opened on that URL
 * (a producer app and a worker in one test see the same queues). It lives as long as the process.
 *
 * Structures (the in-memory counterparts of the Redis keys and SQLite tables):
 *   bands       queue -> band (0/3/6/9) -> array of waiting messages, index 0 served first
 *   reserved    delivery tag -> { message, lease until (ms), reserved at (ms) }; a second reservation of the same
 *               tag replaces the first, as kombu's `unacked` hash does
 *   parked      messages with a due time (ETA), unordered
 *   dead        dead-letter list name -> entries, newest first
 *   workers     live celeriac worker instance -> alive until (ms)
 *   revoked     revoked task id -> expires at (ms)
 *   beat        app -> leader lock and entry -> last run (ms)
 * Invariants: every operation is synchronous, hence atomic; listeners are told after any change that may make a
 * message ready, asynchronously and coalesced (they re-check, like the SQLite change feed's listeners).
 */
import type { DeadLetter } from '../../stores/dead-letter.ts';
import { PRIORITY_BANDS } from '../envelope.ts';
import { memoryStoreName } from '../../stores/memory/url.ts';

export interface StoredMessage {
  queue: string;
  band: number;
  raw: string;
}

export interface Reservation {
  message: StoredMessage;
  leaseUntil: number;
  reservedAt: number;
}

export interface BeatState {
  lock: { owner: string; expiresAt: number } | null;
  runs: Map<string, number>;
}

export class MemoryStore {
  readonly bands = new Map<string, Map<number, StoredMessage[]>>();
  readonly reserved = new Map<string, Reservation>();
  parked: Array<StoredMessage & { dueAt: number }> = [];
  readonly dead = new Map<string, DeadLetter[]>();
  readonly workers = new Map<string, number>();
  readonly revoked = new Map<string, number>();
  /** Rate-limited tasks' next free start (ms), stores/rate.ts. */
  readonly rates = new Map<string, number>();
  readonly beat = new Map<string, BeatState>();
  private readonly listeners = new Set<() => void>();
  private emitScheduled = false;

  band(queue: string, band: number): StoredMessage[] {
    let q = this.bands.get(queue);
    if (!q) this.bands.set(queue, (q = new Map(PRIORITY_BANDS.map((b) => [b, []]))));
    return q.get(band)!;
  }

  pushBack(m: StoredMessage): void {
    this.band(m.queue, m.band).push(m);
  }

  /** Put messages in front of their bands, the first of the list frontmost. */
  pushFront(messages: StoredMessage[]): void {
    for (const m of [...messages].reverse()) this.band(m.queue, m.band).unshift(m);
  }

  deadLetters(list: string): DeadLetter[] {
    let l = this.dead.get(list);
    if (!l) this.dead.set(list, (l = []));
    return l;
  }

  beatState(app: string): BeatState {
    let b = this.beat.get(app);
    if (!b) this.beat.set(app, (b = { lock: null, runs: new Map() }));
    return b;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    if (this.emitScheduled || this.listeners.size === 0) return;
    this.emitScheduled = true;
    setImmediate(() => {
      this.emitScheduled = false;
      for (const l of [...this.listeners]) l();
    });
  }
}

const stores = new Map<string, MemoryStore>();

/** The store a memory:// URL names (`memory://` and `memory://name`). */
export function memoryStore(url: string): MemoryStore {
  const name = memoryStoreName(url);
  let s = stores.get(name);
  if (!s) stores.set(name, (s = new MemoryStore()));
  return s;
}
