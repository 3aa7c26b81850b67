/**
 * Batches the end of tasks: result writes and acks that finish in the same turn of the event loop go to Redis
 * together (the backend's writes, then one ack for all), so a busy worker pays one round trip per batch, not per task.
 * Order is the at-least-once contract: a message is acked only after its result is stored. On failure the batch is
 * kept and retried; the reservations stay alive meanwhile (the worker keeps renewing them).
 */
import type { Broker } from '../broker/broker.ts';
import type { ResultBackend, StoreRequest } from '../backend/backend.ts';
import type { Logger } from '../common/logger.ts';

export class Settler {
  private stores: StoreRequest[] = [];
  private acks: string[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private retryDelay = 100;
  private closed = false;

  constructor(
    private readonly broker: Broker,
    private readonly backend: () => Promise<ResultBackend>,
    private readonly log: Logger,
    private readonly onAcked: (tags: string[]) => void,
  ) {}

  store(entry: StoreRequest): void {
    if (this.closed) return;
    this.stores.push(entry);
    this.schedule();
  }

  ack(tag: string): void {
    if (this.closed) return;
    this.acks.push(tag);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /**
   * Write everything pending; resolves when it is written (or failed and rescheduled). Batches are independent, so
   * several may be in flight at once: each acks only its own messages, after its own results are stored.
   */
  async flush(): Promise<void> {
    if (this.stores.length === 0 && this.acks.length === 0) {
      await Promise.all(this.inFlight);
      return;
    }
    const stores = this.stores;
    const acks = this.acks;
    this.stores = [];
    this.acks = [];
    const batch = this.write(stores, acks);
    this.inFlight.add(batch);
    try {
      await batch;
    } finally {
      this.inFlight.delete(batch);
    }
  }

  private async write(stores: StoreRequest[], acks: string[]): Promise<void> {
    try {
      if (stores.length > 0) await (await this.backend()).store(stores);
    } catch (err) {
      this.requeue(stores, acks, 'store results', err);
      return;
    }
    try {
      if (acks.length > 0) await this.broker.ack(acks);
      this.retryDelay = 100;
      this.onAcked(acks);
    } catch (err) {
      this.requeue([], acks, 'acknowledge messages', err);
    }
  }

  private requeue(stores: StoreRequest[], acks: string[], what: string, err: unknown): void {
    this.log.error(`Cannot ${what} (${(err as Error).message}); retrying in ${this.retryDelay} ms`);
    this.stores.unshift(...stores);
    this.acks.unshift(...acks);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 5000);
    if (!this.closed) setTimeout(() => void this.flush(), delay).unref();
  }

  /** After a shutdown gave the messages back, late results of aborted tasks must not ack a redelivered message. */
  close(): void {
    this.closed = true;
    this.stores = [];
    this.acks = [];
  }

  get pending(): number {
    return this.stores.length + this.acks.length + this.inFlight.size;
  }
}
