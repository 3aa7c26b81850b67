/**
 * The consume loop and its prefetch window. It reserves messages in batches while the window has room, hands each
 * one to intake, and rotates the queue order after each batch (round-robin across queues). Every reservation this
 * worker holds is in `reserved` until it ends: acked, given back, parked or dead-lettered.
 *
 * The window counts what is reserved, not held for an ETA, and not finished. Finished tasks whose record and ack
 * are still on their way do not block new reservations (that would serialise the worker on broker round trips),
 * but a backlog of them beyond another window's worth does: backpressure when the broker is slow.
 */
import type { Broker, Delivery, Rejected } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';

/** How long one reserve() call waits for a first message before the loop looks at its state again. */
const RESERVE_WAIT_MS = 1000;

export interface ConsumerHooks {
  accept(d: Delivery): void;
  rejected(r: Rejected): void;
  /** Reservations held for an ETA: they do not count against the window. */
  heldCount(): number;
}

export class Consumer {
  readonly reserved = new Map<string, Delivery>();
  /** Finished tasks whose ack is not yet confirmed. */
  private readonly settling = new Set<string>();
  private wakeUp: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  private running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly broker: Broker, private readonly queues: readonly string[], readonly prefetch: number,
    private readonly log: Logger, private readonly hooks: ConsumerHooks) {}

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  /** Stop reserving; resolves once the loop has ended (a pending reserve() returns promptly). */
  stop(): Promise<void> {
    this.running = false;
    this.broker.interrupt();
    this.wake();
    return this.done;
  }

  /** Reservations ended by the broker: acked, given back, parked or dead-lettered. */
  ended(tags: string[]): void {
    for (const t of tags) {
      this.reserved.delete(t);
      this.settling.delete(t);
    }
    if (this.inWindow < this.prefetch) this.wake();
    if (this.reserved.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** A task finished; its reservation ends when its ack is confirmed. */
  finished(tag: string): void {
    if (this.reserved.has(tag)) this.settling.add(tag);
    if (this.inWindow < this.prefetch) this.wake();
  }

  /** Look at the window again (e.g. a message went to be held for its ETA). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Resolves when this worker holds no reservation. */
  idle(): Promise<void> {
    if (this.reserved.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get inWindow(): number {
    const unsettled = this.settling.size > this.prefetch ? this.settling.size : 0;
    return this.reserved.size - this.hooks.heldCount() - this.settling.size + unsettled;
  }

  private async loop(): Promise<void> {
    let queues = [...this.queues];
    let failures = 0;
    while (this.running) {
      const room = this.prefetch - this.inWindow;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        this.wakeUp = null;
        continue;
      }
      let batch;
      try {
        batch = await this.broker.reserve(queues, room, RESERVE_WAIT_MS);
        if (failures > 0) this.log.info('Connection to broker restored; consuming again.');
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        failures++;
        const delay = Math.min(100 * 2 ** Math.min(failures, 5), 2000);
        this.log.error(`consumer: Cannot reserve messages: ${(err as Error).message}. Trying again in ${delay / 1000}s...`);
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      for (const r of batch.rejected) this.hooks.rejected(r);
      for (const d of batch.deliveries) {
        this.reserved.set(d.tag, d);
        this.hooks.accept(d);
      }
      if (batch.deliveries.length > 0 && queues.length > 1) queues = [...queues.slice(1), queues[0]];
    }
  }
}
