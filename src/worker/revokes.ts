/**
 * What a worker knows of revoked task ids: a local cache in front of the broker's durable revoke store
 * (Broker.storeRevokes, docs/redis-layout.md `celeriac.revoked`), so a worker started later, or restarted, still
 * refuses a task revoked before it started.
 *
 * - At start the live set is loaded (load()).
 * - A revoke heard on the broadcast (ours or Python's `celery control revoke`) goes into the cache at once and into
 *   the store (remember()), so workers that start later learn it too.
 * - On a broker without remote control (memory://), at receipt of a message whose id is not in the cache, the broker
 *   is asked (check()); the ids asked in one turn of the event loop go in one lookup. With remote control (Redis,
 *   SQLite) the broadcast brings every revoke made while the worker runs, and the receipt costs nothing.
 * - Every REFRESH_MS, the ids this worker holds in memory without having run them (held for a near ETA, waiting
 *   for a slot) are looked up again (refresh()): on brokers without remote control (SQLite, memory) that is how a
 *   revoke reaches them.
 * The decision itself stays in one place, Intake.refuse(), which reads the cache synchronously (has()).
 * A lookup that fails (the broker is down) is logged once per cause and the cache decides alone.
 */
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import { REVOKE_EXPIRES_MS, REVOKES_MAX, pruneRevokes } from '../stores/limits.ts';

/** How often ids held in memory are looked up again in the broker. */
export const REVOKE_REFRESH_MS = 1000;

export class Revokes {
  /** task id -> expires at (ms since the epoch) */
  private readonly ids = new Map<string, number>();
  private broker: Broker | null = null;
  /** Ids asked in this turn of the event loop, answered by one lookup. */
  private pending: { ids: Set<string>; done: Promise<void> } | null = null;
  private failure: string | null = null;
  /** Ids remembered by this worker only (a revoke addressed to it): not stored at start either. */
  private readonly localOnly = new Set<string>();

  constructor(private readonly log: Logger, private readonly expiresMs = REVOKE_EXPIRES_MS) {}

  /** Revoked and not expired, as far as this worker knows now. */
  has(id: string): boolean {
    const until = this.ids.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.ids.delete(id);
    return false;
  }

  /** The live ids this worker remembers (inspect revoked). */
  list(): string[] {
    const now = Date.now();
    return [...this.ids].filter(([, until]) => until > now).map(([id]) => id);
  }

  private add(id: string, until: number): void {
    if (until <= (this.ids.get(id) ?? 0)) return;
    this.ids.set(id, until);
    if (this.ids.size > REVOKES_MAX) pruneRevokes(this.ids, Date.now());
  }

  /**
   * Connect to the broker and load its live revokes. Ids revoked before (remember() with no broker yet) are stored
   * now. Failing to load is a warning: the worker still starts, and receipt checks ask the broker again.
   */
  async load(broker: Broker): Promise<void> {
    this.broker = broker;
    const early = this.list().filter((id) => !this.localOnly.has(id));
    try {
      if (early.length > 0) await broker.storeRevokes(early, this.expiresMs);
      for (const [id, until] of await broker.liveRevokes()) this.add(id, until);
      this.ok();
    } catch (err) {
      this.failed('load the revoked task ids', err);
    }
  }

  /**
   * A revoke this worker was told of: known at once and, when `durable`, stored for every worker (resolves once
   * stored, or failed: logged).
   */
  async remember(ids: string[], durable = true): Promise<void> {
    const until = Date.now() + this.expiresMs;
    for (const id of ids) this.add(id, until);
    if (!durable) {
      for (const id of ids) this.localOnly.add(id);
      return;
    }
    if (!this.broker || ids.length === 0) return;
    try {
      await this.broker.storeRevokes(ids, this.expiresMs);
      this.ok();
    } catch (err) {
      this.failed(`store the revoke of ${ids.join(', ')}`, err);
    }
  }

  /**
   * Ask the broker about `id` unless it is known revoked already; coalesced with the other ids of this turn. Where
   * the broker carries remote control (Redis, SQLite), a running worker hears every revoke as it is made, so only
   * brokers without it (memory://) pay this lookup at receipt.
   */
  check(id: string): Promise<void> {
    if (!this.broker || this.broker.control || this.has(id)) return Promise.resolve();
    if (!this.pending) {
      const ids = new Set<string>();
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.pending = null;
        return this.lookup([...ids]);
      });
      this.pending = { ids, done };
    }
    this.pending.ids.add(id);
    return this.pending.done;
  }

  /** Look these ids up again (those held in memory, on a timer). */
  refresh(ids: string[]): Promise<void> {
    const unknown = ids.filter((id) => !this.has(id));
    return unknown.length === 0 ? Promise.resolve() : this.lookup(unknown);
  }

  private async lookup(ids: string[]): Promise<void> {
    if (!this.broker || ids.length === 0) return;
    try {
      for (const [id, until] of await this.broker.revoked(ids)) this.add(id, until);
      this.ok();
    } catch (err) {
      this.failed('look up revoked task ids', err);
    }
  }

  private ok(): void {
    if (this.failure === null) return;
    this.failure = null;
    this.log.info('Revoked task ids readable again');
  }

  /** Said once per cause: a broker outage would otherwise log one line per message. */
  private failed(what: string, err: unknown): void {
    const why = (err as Error).message;
    if (why !== this.failure) this.log.warning(`Cannot ${what}: ${why}; going by the revokes this worker knows`);
    this.failure = why;
  }
}
