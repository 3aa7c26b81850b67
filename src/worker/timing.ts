/**
 * ETA timing. A message due within `HOLD_MS` is held in memory until it is due (its reservation is renewed like any
 * other); a later one is parked in the broker (intake.ts) and comes back through promotion sweeps: one timer, set to
 * the earliest due time this worker knows of, at most `PROMOTE_EVERY_MS` away. Timers may fire a little early, so a
 * held message's due time is checked again when its timer fires.
 */
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import type { Running } from './execute.ts';

/** ETAs closer than this are held in memory; farther ones are parked in the broker. */
export const HOLD_MS = 1000;
/** The longest a due parked message waits for a promotion sweep. */
const PROMOTE_EVERY_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export class EtaTiming {
  private readonly held = new Map<string, { timer: NodeJS.Timeout; run: Running; dueAt: number }>();
  private promoteTimer: NodeJS.Timeout | null = null;
  private promoteAt = Infinity;
  private stopped = false;

  constructor(private readonly broker: Broker, private readonly log: Logger) {}

  get heldCount(): number {
    return this.held.size;
  }

  scheduled(): Array<{ eta: Date; run: Running }> {
    // a task held for its rate-limit turn has no ETA of its own: its turn is when it runs
    return [...this.held.values()].map((h) => ({ eta: h.run.msg.eta ?? new Date(h.dueAt), run: h.run }));
  }

  /** Keep `run` until `dueAt`, then hand it to `onDue`. */
  hold(run: Running, dueAt: number, onDue: (run: Running) => void): void {
    const tag = run.delivery.tag;
    const timer = setTimeout(() => {
      if (Date.now() < dueAt) {
        this.hold(run, dueAt, onDue);
        return;
      }
      this.held.delete(tag);
      onDue(run);
    }, Math.min(Math.max(1, dueAt - Date.now()), MAX_TIMER_MS));
    this.held.set(tag, { timer, run, dueAt });
  }

  /** Take every held message away (to give it back to the broker). */
  takeHeld(): Running[] {
    const runs = [...this.held.values()].map((h) => {
      clearTimeout(h.timer);
      return h.run;
    });
    this.held.clear();
    return runs;
  }

  /** Sweep now, then keep sweeping until stop(). */
  start(): void {
    void this.promote();
  }

  /** Make sure a sweep runs by `at` (a message was parked until then). */
  promoteBy(at: number): void {
    if (this.stopped || at >= this.promoteAt) return;
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    this.promoteAt = at;
    this.promoteTimer = setTimeout(() => void this.promote(), Math.max(0, at - Date.now()));
  }

  stop(): void {
    this.stopped = true;
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    this.promoteTimer = null;
  }

  /** Move due parked messages back to their queues, then sleep until the next is due (at most a second). */
  private async promote(): Promise<void> {
    this.promoteTimer = null;
    this.promoteAt = Infinity;
    if (this.stopped) return;
    let next = Date.now() + PROMOTE_EVERY_MS;
    try {
      const { moved, nextDueAt } = await this.broker.promoteDue();
      if (moved > 0) this.log.debug(`Moved ${moved} due message(s) back to their queues`);
      if (nextDueAt !== null) next = Math.min(next, nextDueAt);
    } catch (err) {
      this.log.warning(`Cannot move due messages: ${(err as Error).message}`);
    }
    this.promoteBy(next);
  }
}
