/**
 * The shape of the app's `beatSchedule` setting: what the user writes, typed here so the app's configuration does
 * not depend on the scheduler. src/beat/ implements the schedules (`every`, `crontab`) and checks the entries.
 */

/** When a periodic entry is due. `every(...)` and `crontab(...)` build the two kinds celeriac has. */
export interface Schedule {
  /** When the entry is next due (ms since the epoch); may be in the past; Infinity when it never will be. */
  next(lastRunMs: number | null, fromMs: number, tz: string): number;
  /** The schedule in words, e.g. "every 60 seconds" or "at 09:43 every day". */
  describe(): string;
}

export interface BeatEntryOptions {
  queue?: string;
  priority?: number;
  /** Seconds after the send, or an absolute time, after which a worker discards the message. */
  expires?: number | Date | string;
}

export interface BeatEntry {
  /** The task's wire name; it need not be defined in this process (a Python task works too). */
  task: string;
  /** every(...), crontab(...), or plain seconds. */
  schedule: Schedule | number;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: BeatEntryOptions;
  /**
   * After downtime, send every missed tick (oldest first) instead of one. Default false: one send for all the
   * ticks missed, then the normal cadence (Celery's behaviour).
   */
  catchUp?: boolean;
}
