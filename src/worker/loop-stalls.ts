/**
 * Finds a blocked event loop: every TICK_MS a timer notes how late it fired. A lateness over `thresholdMs` is a
 * stall (synchronous work in a handler): the worker logs a warning naming the tasks that ran during it (running at
 * the tick before, or ended since: a handler that blocks ends before the late timer fires), since lease
 * renewals wait for the loop too, and a stall past the lease lets another worker take the message over. The worst
 * stall is kept for `inspect stats`.
 */
import type { Logger } from '../common/logger.ts';
import type { Running } from './execute.ts';

const TICK_MS = 100;
/** Names shown in one warning. */
const NAMED = 5;

export interface Stall {
  ms: number;
  /** The tasks running when it ended, `name[id]`. */
  tasks: string[];
  at: number;
}

export class LoopStalls {
  worst: Stall | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Running at the last tick, and ended since. */
  private recent = new Set<Running>();

  constructor(private readonly log: Logger, private readonly running: () => Iterable<Running>,
    private readonly thresholdMs: number, private readonly leaseMs: number) {}

  start(): void {
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = Math.round(now - last - TICK_MS);
      last = now;
      if (late >= this.thresholdMs) this.stalled(late);
      this.recent = new Set(this.running());
    }, TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A task ended: it may be the one that blocked the loop (the timer only fires after it returned). */
  ended(run: Running): void {
    if (this.timer) this.recent.add(run);
  }

  private stalled(ms: number): void {
    // the oldest first: the blocking task is among those that started before the stall
    const runs = [...new Set([...this.recent, ...this.running()])].sort((a, b) => a.startedAt - b.startedAt);
    const tasks = runs.slice(0, NAMED).map((r) => `${r.msg.task}[${r.msg.id}]`);
    if (runs.length > NAMED) tasks.push(`${runs.length - NAMED} more`);
    if (!this.worst || ms > this.worst.ms) this.worst = { ms, tasks, at: Date.now() };
    const risk = ms >= this.leaseMs ? `longer than the ${this.leaseMs} ms lease: another worker may run the same message`
      : `leases are renewed on this loop (lease ${this.leaseMs} ms)`;
    this.log.warning(`The event loop was blocked for ${ms} ms (${risk}); running: ${tasks.join(', ') || 'nothing'}. ` +
      'Keep handlers asynchronous or split CPU-bound work');
  }
}
