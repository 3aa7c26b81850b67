/**
 * Rate limits across every worker on the broker (a task's `rateLimit`, Celery's syntax): before a rate-limited task
 * may have a slot, it takes a turn from the broker (stores/rate.ts). Until its turn comes it holds no concurrency
 * slot and blocks nothing: a turn within a second is waited for in memory (still reserved, its lease renewed, so a
 * dead worker's message comes back); a later one parks the message in the broker until then, like a far ETA.
 * Rates set at run time (remote control's `rate_limit`, Worker.setRateLimit) win over the tasks' own.
 */
import type { Broker } from '../broker/broker.ts';
import type { Celeriac } from '../app/app.ts';
import type { Logger } from '../common/logger.ts';
import type { Running } from './execute.ts';
import { HOLD_MS, type EtaTiming } from './timing.ts';

export interface RateGateHooks {
  /** The task may run now. */
  admit(run: Running): void;
  /** Park the message in the broker until `dueAt`; false when it could not (it is then held in memory). */
  park(run: Running, dueAt: number): Promise<boolean>;
  /** Revoked or expired while it waited: true when refused. */
  refuse(run: Running): boolean;
}

/** How long to wait before asking again when the broker cannot be asked. */
const RETRY_MS = 1000;
/** The longest a message waits before asking again, so that a rate changed at run time applies within this. */
export const RATE_RECHECK_MS = 10_000;

export class RateGate {
  constructor(private readonly app: Celeriac, private readonly broker: Broker, private readonly timing: EtaTiming,
    private readonly log: Logger, private readonly hooks: RateGateHooks,
    /** Rates set at run time, by task name: interval ms, or null for none. */
    private readonly overrides: ReadonlyMap<string, number | null> = new Map()) {}

  /** The interval between two starts of `task` on the broker, or null when it has no rate limit. */
  intervalOf(task: string): number | null {
    if (this.overrides.has(task)) return this.overrides.get(task)!;
    return this.app.tasks.get(task)?.resolved.rateLimitMs ?? null;
  }

  /** Run `run` now if its task has no rate limit, else when it has a turn. */
  pass(run: Running): void {
    const interval = this.intervalOf(run.msg.task);
    if (interval === null) this.hooks.admit(run);
    else void this.take(run, interval);
  }

  private async take(run: Running, interval: number): Promise<void> {
    let waitMs: number;
    let reserved: boolean;
    try {
      ({ reserved, waitMs } = await this.broker.rateAcquire(run.msg.task, interval, HOLD_MS));
    } catch (err) {
      this.log.warning(`Cannot take a rate-limit turn for ${run.msg.task}[${run.msg.id}]: ${(err as Error).message}; trying again in ${RETRY_MS} ms`);
      reserved = false;
      waitMs = RETRY_MS;
    }
    if (reserved) {
      if (waitMs <= 0) this.hooks.admit(run);
      else this.timing.hold(run, Date.now() + waitMs, (due) => this.hooks.refuse(due) || this.hooks.admit(due));
      return;
    }
    // many may be waiting for the same turns: spread their next asks over a second rather than all at once
    const dueAt = Date.now() + Math.min(waitMs, RATE_RECHECK_MS) + Math.random() * HOLD_MS;
    if (dueAt - Date.now() > HOLD_MS && await this.hooks.park(run, dueAt)) return;
    this.timing.hold(run, dueAt, (due) => this.hooks.refuse(due) || this.pass(due));
  }
}
