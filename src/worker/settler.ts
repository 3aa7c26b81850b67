/**
 * Batches the end of tasks: result writes and acks that finish in the same turn of the event loop go to Redis
 * together (the backend's writes, then one ack for all), so a busy worker pays one round trip per batch, not per task.
 * Order is the at-least-once contract: a message is acked only after its result is stored. On failure the batch is
 * kept and retried; the reservations stay alive meanwhile (the worker keeps renewing them). When the results cannot
 * be written (a full Redis), the acks of tasks with no record in the batch still go through: acking frees memory.
 */
import type { Broker } from '../broker/broker.ts';
import type { ResultBackend, StoreRequest } from '../backend/backend.ts';
import type { Logger } from '../common/logger.ts';

/** A message to acknowledge, with its task id when known (so it need not wait for other tasks' records). */
interface Ack {
  tag: string;
  taskId?: string;
}

export class Settler {
  private stores: StoreRequest[] = [];
  private acks: Ack[] = [];
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

  ack(tag: string, taskId?: string): void {
    if (this.closed) return;
    this.acks.push({ tag, taskId });
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

  private async write(stores: StoreRequest[], acks: Ack[]): Promise<void> {
    let ready = acks;
    let stored = true;
    try {
      if (stores.length > 0) await (await this.backend()).store(stores);
    } catch (err) {
      stored = false;
      const waiting = new Set(stores.map((s) => s.taskId));
      const held = acks.filter((a) => a.taskId === undefined || waiting.has(a.taskId));
      ready = acks.filter((a) => a.taskId !== undefined && !waiting.has(a.taskId));
      this.requeue(stores, held, 'store results', err);
    }
    if (ready.length === 0) return;
    try {
      const tags = ready.map((a) => a.tag);
      await this.broker.ack(tags);
      if (stored) this.retryDelay = 100;
      this.onAcked(tags);
    } catch (err) {
      this.requeue([], ready, 'acknowledge messages', err);
    }
  }

  private requeue(stores: StoreRequest[], acks: Ack[], what: string, err: unknown): void {
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
