/**
 * The embeddable scheduler (Celery's beat). Duties, in order:
 * 1. Hold the leader lock in the broker's BeatStore, renewing it every lockTtl/3; followers try to take it every
 *    lockTtl/10, so a dead leader is replaced within about one lease. Only the leader sends.
 * 2. For each entry, compute when it is due from its last run as stored in the BeatStore (shared by every beat
 *    process, kept across restarts); an entry that never ran counts from the moment this beat started.
 * 3. Send a due entry with `store.fire`, which records the run and publishes the message in one atomic step that is
 *    fenced by the lock and by the last run this beat read: each tick goes out once, whatever the number of beats.
 *    The run recorded is the tick's own time while on schedule (no drift); after downtime that missed more than one
 *    tick, one send and the current time (no burst), unless the entry asks for `catchUp`.
 * 4. On becoming leader, forget the state of entries no longer in the schedule.
 * 5. Sleep until the earliest due time or lock renewal, never longer than tickMaxMs; release the lock on stop.
 * Every time beat reads (due times, when to renew or retry the lock) and every wait comes from its clock: the real
 * one (Date.now and timers) unless BeatOptions.clock gives another, as tests do. The lock's lease itself is timed
 * by the BeatStore.
 *
 * Modes: idle → running (follower ⇄ leader) → stopped. Events: 'leader' (boolean), 'sent' (BeatSend), 'stopped'.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { hostName } from '../common/ids.ts';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import type { BeatStore } from '../broker/broker.ts';
import type { Celeriac, PreparedMessage } from '../app/app.ts';
import { resolveEntries, type ResolvedEntry } from './entry.ts';

export interface BeatOptions {
  logger?: Logger;
  /** Lease of the leader lock in ms (default 5000): a dead leader is replaced within about this long. */
  lockTtlMs?: number;
  /** Longest sleep between two passes in ms (default 1000). */
  tickMaxMs?: number;
  /** Where beat reads the time and how it waits (default: Date.now and the global timers). For tests and simulations. */
  clock?: BeatClock;
}

/** The time source and timer beat uses; `setTimeout` returns a handle that `clearTimeout` takes back. */
export interface BeatClock {
  /** ms since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Looks the globals up on each call, so node's mock.timers and similar fakes apply too. */
const realClock: BeatClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function checkClock(clock: unknown): BeatClock {
  const c = clock as Partial<Record<keyof BeatClock, unknown>> | null;
  const missing = (['now', 'setTimeout', 'clearTimeout'] as const).filter((k) => typeof c?.[k] !== 'function');
  if (c === null || typeof c !== 'object' || missing.length > 0) {
    throw new CeleriacError(ErrorCode.BadOption, `Beat: clock must be { now(), setTimeout(fn, ms), clearTimeout(handle) }; missing ${missing.join(', ')}`);
  }
  return c as BeatClock;
}

export interface BeatSend {
  entry: string;
  task: string;
  id: string;
  /** The run recorded for the entry (ms since the epoch). */
  runAt: number;
}

type Mode = 'idle' | 'running' | 'stopped';

export class Beat extends EventEmitter {
  readonly owner: string;
  readonly entries: ResolvedEntry[];
  readonly timezone: string;
  readonly lockTtlMs: number;
  readonly tickMaxMs: number;
  private readonly log: Logger;
  private readonly clock: BeatClock;
  private mode: Mode = 'idle';
  private store!: BeatStore;
  private leader = false;
  private startedAt = 0;
  private nextLockAt = 0;
  private announced = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private starting = false;

  constructor(readonly app: Celeriac, options: BeatOptions = {}) {
    super();
    this.log = options.logger ?? defaultLogger;
    this.lockTtlMs = options.lockTtlMs ?? 5000;
    this.tickMaxMs = options.tickMaxMs ?? 1000;
    this.clock = options.clock === undefined ? realClock : checkClock(options.clock);
    this.timezone = app.conf.timezone;
    this.owner = `${hostName()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.entries = resolveEntries(app.conf.beatSchedule);
    for (const e of this.entries) {
      e.schedule.next(null, this.clock.now(), this.timezone); // a schedule that cannot work fails now, not at its first tick
      this.prepare(e); // so do arguments that are not JSON and bad options
    }
  }

  get state(): Mode {
    return this.mode;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Connects and starts the scheduling loop (its first pass tries the lock at once). */
  async start(): Promise<void> {
    if (this.mode !== 'idle' || this.starting) {
      const state = this.starting && this.mode === 'idle' ? 'starting' : this.mode;
      throw new CeleriacError(ErrorCode.BadOption, `beat already ${state}: start() runs once per Beat; create a new Beat to start again`);
    }
    this.starting = true;
    this.log.info('beat: Starting...');
    const broker = await this.app.broker();
    if (this.mode !== 'idle') return; // stopped while connecting
    this.store = broker.beatStore(this.app.main);
    this.mode = 'running';
    this.startedAt = this.clock.now();
    this.loopDone = this.loop();
  }

  /** Stops after the pass in progress and releases the lock so another beat takes over at once. Idempotent. */
  stop(): Promise<void> {
    if (this.mode === 'idle') this.mode = 'stopped';
    this.stopping ??= this.mode === 'running' ? this.shutdown() : Promise.resolve();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.mode = 'stopped';
    this.wake?.();
    await this.loopDone;
    try {
      await this.store.release(this.owner);
    } catch (err) {
      this.log.warning(`beat: Cannot release the leader lock: ${(err as Error).message}`);
    }
    if (this.leader) {
      this.setLeader(false, true);
      this.log.info(`beat: Released the leader lock (${this.owner})`);
    }
    this.emit('stopped');
  }

  private async loop(): Promise<void> {
    while (this.mode === 'running') {
      let sleepMs = this.tickMaxMs;
      try {
        sleepMs = await this.pass();
      } catch (err) {
        this.nextLockAt = 0;
        this.log.error(`beat: ${(err as Error).message}`);
      }
      if (this.mode !== 'running') break;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.clock.clearTimeout(timer);
          this.wake = null;
          resolve();
        };
        const timer = this.clock.setTimeout(done, sleepMs);
        this.wake = done;
      });
    }
  }

  private setLeader(leader: boolean, quiet = false): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.announced = true;
    if (!quiet) {
      if (leader) this.log.info(`beat: Acquired the leader lock (${this.owner}); sending due tasks`);
      else this.log.warning(`beat: Lost the leader lock (${this.owner}); standing by`);
    }
    this.emit('leader', leader);
  }

  /** One pass: take or renew the lock, send what is due; returns how long to sleep. */
  private async pass(): Promise<number> {
    const now = this.clock.now();
    if (now >= this.nextLockAt) {
      const held = await this.store.acquire(this.owner, this.lockTtlMs);
      this.nextLockAt = now + (held ? this.lockTtlMs / 3 : Math.max(100, this.lockTtlMs / 10));
      if (held && !this.leader) {
        this.setLeader(true);
        await this.prune();
      } else if (!held && this.leader) {
        this.setLeader(false);
      } else if (!held && !this.announced) {
        this.announced = true;
        this.log.info(`beat: Another beat process holds the leader lock; standing by (${this.owner})`);
      }
    }
    if (!this.leader) return this.sleepUntil(this.nextLockAt);
    const lastRuns = await this.store.lastRuns();
    let wakeAt = this.nextLockAt;
    for (const e of this.entries) {
      if (this.mode !== 'running') return 0;
      const last = lastRuns.get(e.name) ?? null;
      const t = this.clock.now();
      const due = e.schedule.next(last, this.startedAt, this.timezone);
      if (due > t) {
        wakeAt = Math.min(wakeAt, due);
        continue;
      }
      const missedMore = e.schedule.next(due, due, this.timezone) <= t;
      const runAt = Math.round(e.catchUp || !missedMore ? due : t);
      const message = this.prepare(e);
      if (!(await this.store.fire(this.owner, e.name, last, runAt, message))) {
        this.nextLockAt = 0; // the lock was lost or another beat moved on: look again before sending anything
        return Math.min(this.tickMaxMs, 100);
      }
      if (missedMore && !e.catchUp) this.log.info(`beat: ${e.name} missed runs while no beat was sending; sending it once`);
      this.log.info(`Scheduler: Sending due task ${e.name} (${e.task})`);
      this.emit('sent', { entry: e.name, task: e.task, id: message.id, runAt } satisfies BeatSend);
      wakeAt = Math.min(wakeAt, e.schedule.next(runAt, runAt, this.timezone));
    }
    return this.sleepUntil(wakeAt);
  }

  private sleepUntil(at: number): number {
    return Math.max(0, Math.min(this.tickMaxMs, at - this.clock.now()));
  }

  private async prune(): Promise<void> {
    const names = this.entries.map((e) => e.name);
    const stale = [...(await this.store.lastRuns()).keys()].filter((n) => !names.includes(n));
    if (stale.length === 0) return;
    await this.store.prune(names);
    this.log.info(`beat: Forgot the state of entries no longer scheduled: ${stale.join(', ')}`);
  }

  private prepare(e: ResolvedEntry): PreparedMessage {
    return this.app.prepareMessage(e.task, e.args, e.kwargs, e.options, this.app.tasks.get(e.task)?.options);
  }
}
