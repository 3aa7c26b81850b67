/**
 * The embeddable worker: its lifecycle, and the face it shows to remote control. The work itself is split by duty:
 * - consumer.ts: reserve messages in batches while the prefetch window has room;
 * - intake.ts: judge each message (dead letter, unknown, revoked, expired, ETA) before it may run;
 * - revokes.ts: the revoked ids, loaded from the broker's durable store at start and kept up to date;
 * - timing.ts: hold soon-due ETAs in memory, sweep parked ones back when due;
 * - runner.ts: run up to `concurrency` tasks at once (execute.ts runs one; records.ts and settler.ts store its
 *   outcome and ack it, in that order).
 * This file keeps the reservations alive (renew), brings back dead workers' messages (recover), and stops:
 * warm (stop reserving, give back what has not started, let running tasks finish within the timeout) or cold
 * (second request, or the timeout: abort running tasks and give their messages back too).
 *
 * Modes: idle → running → stopping (warm) → stopped; running/stopping → stopped (cold).
 */
import { EventEmitter } from 'node:events';
import { CeleriacError, ErrorCode, TaskRevokedError } from '../common/errors.ts';
import { expandNodeName } from '../common/ids.ts';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { errorToException } from '../protocol/index.ts';
import type { Broker } from '../broker/broker.ts';
import type { Celeriac } from '../app/app.ts';
import { isBuiltin } from '../app/builtins.ts';
import { Settler } from './settler.ts';
import type { ExecEnv, Running } from './execute.ts';
import { Records, taskRecord } from './records.ts';
import { Consumer } from './consumer.ts';
import { Intake } from './intake.ts';
import { EtaTiming } from './timing.ts';
import { Runner } from './runner.ts';
import { startPidbox, type PidboxWorker } from './pidbox.ts';
import { RateGate } from './rate-gate.ts';
import { mingle } from './mingle.ts';
import { LoopStalls } from './loop-stalls.ts';

/** A blocked event loop longer than this is logged as a warning naming the running tasks. */
const STALL_WARN_MS = 1000;
import { rateInterval } from '../task/rate.ts';
import { REVOKE_REFRESH_MS, Revokes } from './revokes.ts';
import { EventClock, TaskEvents } from './events.ts';

export interface WorkerOptions {
  /** Tasks in flight at once (`-c`). */
  concurrency?: number;
  /** Queues to consume (`-Q`), in priority of attention. */
  queues?: string[];
  /** Node name (`-n`), with Celery's %h/%n/%d. */
  hostname?: string;
  prefetchMultiplier?: number;
  logger?: Logger;
  /** Seconds a warm shutdown waits for running tasks before it turns cold (default 60; the CLI's is 25). */
  shutdownTimeout?: number;
  /**
   * Publish task events (`-E`: task-received, -started, -succeeded, -failed, -retried, -revoked, -rejected) for
   * monitors such as Flower and `celery events`; default the app's workerSendTaskEvents (false, as Celery).
   */
  sendTaskEvents?: boolean;
}

type Mode = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * A cold shutdown ends within about this long whatever the broker's state: each step that talks to the broker
 * (last acks, giving messages back, leaving the registry) gets what is left of it, and what does not make it comes
 * back by lease.
 */
const COLD_BUDGET_MS = 1000;

/** `p`, or undefined once `ms` passed (the work goes on in the background; its failure is handled by `p` itself). */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms === Infinity) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The parts of a started worker, made together in start(). */
interface Parts {
  broker: Broker;
  settler: Settler;
  consumer: Consumer;
  intake: Intake;
  timing: EtaTiming;
  runner: Runner;
}

export class Worker extends EventEmitter implements PidboxWorker {
  readonly hostname: string;
  /** Unique per process: several workers may share a node name. @internal */
  readonly instance: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly prefetch: number;
  readonly log: Logger;
  /** Revoked task ids: the broker's durable store and what remote control said. @internal */
  readonly revokes: Revokes;
  /** Tasks run, by name (inspect stats). @internal */
  readonly processed = new Map<string, number>();
  /** @internal */
  startedAt = Date.now();
  /** Whether task events are published (`-E`). */
  readonly sendTaskEvents: boolean;
  /** The logical clock of every event this worker sends (task and worker events). @internal */
  readonly eventClock = new EventClock();
  private events: TaskEvents | undefined;
  private readonly shutdownTimeout: number;
  private mode: Mode = 'idle';
  private parts: Parts | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** The event-loop stall detector, and the worst stall seen (inspect stats). @internal */
  stalls: LoopStalls | null = null;
  /** Time limits set at run time (remote control's time_limit), seconds by task name. */
  private readonly timeOverrides = new Map<string, { soft: number | null; hard: number | null }>();
  /** Rates set at run time (remote control's rate_limit): interval ms by task name, null for none. */
  private readonly rateOverrides = new Map<string, number | null>();
  /** The last heartbeat failure logged, so an outage is reported once. */
  private heartbeatFailure: string | null = null;
  private stopPidbox: (() => Promise<void>) | null = null;
  /** Set once a cold shutdown began: the time by which it ends. */
  private coldUntil: number | null = null;

  constructor(readonly app: Celeriac, options: WorkerOptions = {}) {
    super();
    this.hostname = expandNodeName(options.hostname ?? 'celery@%h');
    this.instance = `${this.hostname}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    this.queues = options.queues?.length ? options.queues : [app.conf.taskDefaultQueue];
    this.concurrency = options.concurrency ?? app.conf.workerConcurrency;
    this.prefetch = Math.max(1, Math.round(this.concurrency * (options.prefetchMultiplier ?? app.conf.workerPrefetchMultiplier)));
    this.log = options.logger ?? defaultLogger;
    this.shutdownTimeout = options.shutdownTimeout ?? 60;
    this.sendTaskEvents = options.sendTaskEvents ?? app.conf.workerSendTaskEvents;
    this.revokes = new Revokes(this.log);
  }

  get state(): Mode {
    return this.mode;
  }

  /** Connects, recovers what dead workers left, and starts consuming. Resolves once consuming. */
  async start(): Promise<void> {
    if (this.mode !== 'idle') throw new CeleriacError(ErrorCode.BadOption, `this worker was already started (${this.mode})`);
    const parts = await this.assemble();
    const { broker } = parts;
    const eviction = await broker.evictionWarning?.();
    if (eviction) this.log.warning(eviction);
    // on a full Redis (E_BROKER_FULL) the worker must still start: consuming and acking frees memory
    await this.unlessFull('declare its queues', () => broker.declareQueues(this.queues));
    await this.unlessFull('write its heartbeat', () => broker.heartbeat(this.instance, this.app.conf.leaseTimeout * 1000));
    await this.recover();
    await this.revokes.load(broker);
    if (broker.control) await mingle(this.app, broker.control, this.hostname, this.log, (ids) => this.revoke(ids, false, true));
    this.mode = 'running';
    const lease = this.app.conf.leaseTimeout * 1000;
    this.timers.push(setInterval(() => void this.renew(), Math.max(200, lease / 3)));
    this.timers.push(setInterval(() => void this.recover(), Math.max(500, lease / 2)));
    this.timers.push(setInterval(() => void this.refreshRevokes(), REVOKE_REFRESH_MS));
    this.stalls = new LoopStalls(this.log, () => parts.runner.running.values(), STALL_WARN_MS, lease);
    this.stalls.start();
    parts.timing.start();
    parts.consumer.start();
    this.startedAt = Date.now();
    if (broker.control) {
      try {
        this.stopPidbox = await startPidbox(this, broker.control, this.log);
      } catch (err) {
        this.log.warning(`Remote control is off: ${(err as Error).message}`);
      }
    }
    this.log.info(`${this.hostname} ready.`);
    this.emit('ready');
  }

  /** A write the worker can start without: refused by a full broker, it is a warning. */
  private async unlessFull(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof CeleriacError && err.code === ErrorCode.BrokerFull)) throw err;
      this.log.warning(`Starting anyway: cannot ${what}: ${err.message}`);
    }
  }

  private async assemble(): Promise<Parts> {
    const [broker, backend] = await Promise.all([this.app.broker(), this.app.backend()]);
    const log = this.log;
    let consumer: Consumer | null = null;
    const settler = new Settler(broker, () => this.app.backend(), log, (tags) => consumer?.ended(tags));
    const records = new Records(settler, backend);
    const timing = new EtaTiming(broker, log);
    if (this.sendTaskEvents && !broker.control) log.warning(`Task events are off: ${broker.displayUrl} carries no events`);
    const events = this.sendTaskEvents && broker.control
      ? new TaskEvents(this.hostname, broker.control, this.eventClock, log) : undefined;
    this.events = events;
    const env: ExecEnv = { app: this.app, broker, backend, settler, records, log, events, hostname: this.hostname,
      parked: (at) => timing.promoteBy(at), timeLimitsOf: (name) => this.timeOverrides.get(name) };
    const runner: Runner = new Runner(this.concurrency, env, {
      refuse: (run) => intake.refuse(run),
      done: (run) => this.taskDone(run),
    });
    const intake: Intake = new Intake({
      app: this.app, broker, backend, settler, records, log, events, timing, revokes: this.revokes,
      run: (run) => {
        if (this.mode === 'running') gate.pass(run);
        else void this.giveBack(this.parts!, [run]); // arrived or came due while stopping
      },
      ended: (tag) => consumer?.ended([tag]),
      held: () => consumer?.wake(),
    });
    const gate: RateGate = new RateGate(this.app, broker, timing, log, {
      admit: (run) => {
        if (this.mode === 'running') runner.enqueue(run);
        else void this.giveBack(this.parts!, [run]);
      },
      park: (run, dueAt) => intake.park(run, dueAt),
      refuse: (run) => intake.refuse(run),
    }, this.rateOverrides);
    consumer = new Consumer(broker, this.queues, this.prefetch, log, {
      accept: (d) => void intake.accept(d),
      rejected: (r) => void intake.rejected(r),
      heldCount: () => timing.heldCount,
    });
    this.parts = { broker, settler, consumer, intake, timing, runner };
    return this.parts;
  }

  private taskDone(run: Running): void {
    this.stalls?.ended(run);
    this.parts?.consumer.finished(run.delivery.tag);
    this.processed.set(run.msg.task, (this.processed.get(run.msg.task) ?? 0) + 1);
    if (this.listenerCount('task-done') > 0) this.emit('task-done', run);
  }

  /** In-flight work: reserved by this worker and not yet settled. @internal For tests and inspect. */
  get size(): { reserved: number; running: number; waiting: number; held: number } {
    const p = this.parts;
    return { reserved: p?.consumer.reserved.size ?? 0, running: p?.runner.running.size ?? 0,
      waiting: p?.runner.queued.length ?? 0, held: p?.timing.heldCount ?? 0 };
  }

  /** @internal The remote-control face (pidbox.ts): registered, active, reservedRequests, scheduled. */
  registered(): string[] {
    return [...this.app.tasks.keys()].filter((t) => !isBuiltin(t)).sort();
  }

  active(): Running[] {
    return [...(this.parts?.runner.running.values() ?? [])];
  }

  reservedRequests(): Running[] {
    return [...(this.parts?.runner.queued ?? [])];
  }

  scheduled(): Array<{ eta: Date; run: Running }> {
    return this.parts?.timing.scheduled() ?? [];
  }

  /**
   * Remote control's `rate_limit`: a new rate for one of this worker's tasks ('10/s', '100/m', a number per second;
   * null, 0 or '' for none), applied to its next starts; false for a task this worker does not have.
   */
  setRateLimit(taskName: string, rate: string | number | null): boolean {
    if (!this.app.tasks.has(taskName)) return false;
    this.rateOverrides.set(taskName, rateInterval(rate, `rate limit of ${taskName}`));
    this.log.info(`New rate limit for ${taskName}: ${rate === null || rate === '' || rate === 0 ? 'none' : String(rate)}`);
    return true;
  }

  /**
   * Remote control's `time_limit`: new soft and hard limits (seconds, null for none) for one of this worker's
   * tasks, for its next runs; a message's own limits still win. False for a task this worker does not have.
   */
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): boolean {
    if (!this.app.tasks.has(taskName)) return false;
    this.timeOverrides.set(taskName, { soft: soft || null, hard: hard || null });
    this.log.info(`New time limits for ${taskName}: soft ${soft ?? 'none'}, hard ${hard ?? 'none'}`);
    return true;
  }

  worstStall(): { ms: number; tasks: string[]; at: number } | null {
    return this.stalls?.worst ?? null;
  }

  revokedIds(): string[] {
    return this.revokes.list();
  }

  /**
   * Celery's revoke: the id is remembered, here and in the broker's durable store (for every worker, also those
   * that start later), so the task is discarded (REVOKED) when it arrives or comes due; with `terminate` a running
   * one gets its AbortSignal fired, REVOKED "terminated" is stored, and its outcome is ignored. Resolves once the
   * revoke is stored (a failure to store it is logged; this worker knows it anyway). With `durable` false only this
   * worker remembers it (a revoke addressed to some workers only).
   */
  revoke(taskId: string | string[], terminate = false, durable = true): Promise<void> {
    const ids = Array.isArray(taskId) ? taskId : [taskId];
    const stored = this.revokes.remember(ids, durable);
    if (terminate && this.parts) this.terminate(this.parts, new Set(ids));
    return stored;
  }

  private terminate(parts: Parts, ids: Set<string>): void {
    for (const run of parts.runner.running.values()) {
      const taskId = run.msg.id;
      if (!ids.has(taskId)) continue;
      run.terminated = true;
      const err = new TaskRevokedError(taskId, 'terminated');
      run.abort(err);
      this.log.info(`Terminating ${run.msg.task}[${taskId}] (revoked)`);
      this.events?.revoked(run.msg, { terminated: true, expired: false });
      parts.settler.store(taskRecord(run.msg, 'REVOKED', errorToException(err)));
    }
  }

  /** Look up again the ids held in memory and not started (held for an ETA, waiting for a slot): revokes.ts. */
  private async refreshRevokes(): Promise<void> {
    const p = this.parts;
    if (!p) return;
    const ids = [...p.timing.scheduled().map((s) => s.run.msg.id), ...p.runner.queued.map((r) => r.msg.id)];
    if (ids.length > 0) await this.revokes.refresh(ids);
  }

  shutdown(): void {
    this.log.warning('worker: Warm shutdown requested by remote control');
    void this.stop();
  }

  private async renew(): Promise<void> {
    const p = this.parts;
    if (!p) return;
    // independent: a heartbeat refused (a full Redis) must not keep the leases from being renewed
    const [beat, leases] = await Promise.allSettled([
      p.broker.heartbeat(this.instance, this.app.conf.leaseTimeout * 1000),
      p.consumer.reserved.size === 0 ? Promise.resolve() : p.broker.renew([...p.consumer.reserved.keys()]),
    ]);
    if (leases.status === 'rejected') this.log.warning(`Cannot renew reservations: ${(leases.reason as Error).message}`);
    else if (beat.status === 'rejected') {
      // said once per cause, not every renewal: a full Redis can last hours
      const why = (beat.reason as Error).message;
      if (why !== this.heartbeatFailure) this.log.warning(`Cannot write the heartbeat: ${why}`);
      this.heartbeatFailure = why;
    } else if (this.heartbeatFailure !== null) {
      this.heartbeatFailure = null;
      this.log.info('Heartbeat written again');
    }
  }

  private async recover(): Promise<void> {
    try {
      const n = await this.parts!.broker.recover();
      if (n > 0) this.log.info(`Restored ${n} unacknowledged message(s)`);
    } catch (err) {
      this.log.warning(`Cannot recover unacknowledged messages: ${(err as Error).message}`);
    }
  }

  /**
   * Warm shutdown: stop reserving, give back everything not started, wait for running tasks (up to the timeout).
   * A second call, or the timeout, makes it cold: running tasks are aborted and their messages given back.
   */
  async stop(options: { cold?: boolean } = {}): Promise<void> {
    const p = this.parts;
    if (this.mode === 'stopped' || this.mode === 'idle' || !p) {
      this.mode = 'stopped';
      return;
    }
    if (this.mode === 'stopping' || options.cold) {
      this.mode = 'stopping';
      await this.goCold(p);
      return;
    }
    this.mode = 'stopping';
    // the timeout counts from the request, so a broker that does not answer cannot stretch the warm phase
    const deadline = setTimeout(() => void this.goCold(p), this.shutdownTimeout * 1000);
    const stopped = new Promise<void>((resolve) => this.once('stopped', resolve));
    p.timing.stop();
    await Promise.race([p.consumer.stop(), stopped]);
    if ((this.mode as Mode) !== 'stopped') {
      await Promise.race([this.giveBack(p, [...p.runner.takeWaiting(), ...p.timing.takeHeld()]), stopped]);
    }
    await Promise.race([p.runner.drained(), stopped]);
    clearTimeout(deadline);
    if ((this.mode as Mode) === 'stopped') return;
    await this.flush(p);
    await this.withdraw(p);
    await this.finish(p);
  }

  /** Cold: abort, then bounded attempts (COLD_BUDGET_MS in all) to write the last acks and give messages back. */
  private async goCold(p: Parts): Promise<void> {
    if (this.mode === 'stopped') return;
    if (this.coldUntil !== null) return new Promise((resolve) => this.once('stopped', () => resolve()));
    const until = Date.now() + COLD_BUDGET_MS;
    this.coldUntil = until;
    const left = () => until - Date.now();
    p.timing.stop();
    const stopping = p.consumer.stop();
    const runs = p.runner.abortAll(new Error('worker shutting down'));
    await within(this.flush(p), left() / 2);
    // messages still reserved (running ones that were not acked early) go back for another worker
    const back = runs.filter((r) => p.consumer.reserved.has(r.delivery.tag));
    const giving = [...back, ...p.runner.takeWaiting(), ...p.timing.takeHeld()];
    if ((await within(this.giveBack(p, giving).then(() => true), left())) === undefined && giving.length > 0) {
      this.log.warning(`Cold shutdown: the broker did not take back ${giving.length} message(s) in time; they return after the lease`);
    }
    await within(stopping, left());
    await within(this.withdraw(p), left());
    await this.finish(p);
  }

  private async giveBack(p: Parts, runs: Running[]): Promise<void> {
    if (runs.length === 0) return;
    try {
      await p.broker.requeue(runs.map((r) => r.delivery));
      p.consumer.ended(runs.map((r) => r.delivery.tag));
      this.log.info(`Restoring ${runs.length} unacknowledged message(s)`);
    } catch (err) {
      this.log.error(`Cannot give back ${runs.length} message(s): ${(err as Error).message}; they return after the lease`);
    }
  }

  private async flush(p: Parts): Promise<void> {
    try {
      await p.settler.flush();
    } catch (err) {
      this.log.error(`Cannot write the last results and acks: ${(err as Error).message}; their messages return after the lease`);
    }
  }

  /** The last celeriac worker to leave hands parked messages back to their queues (mixed fleets with Python). */
  private async withdraw(p: Parts): Promise<void> {
    try {
      const { unparked } = await p.broker.leave(this.instance);
      if (unparked > 0) this.log.info(`Last celeriac worker leaving: ${unparked} scheduled message(s) back on their queues`);
    } catch (err) {
      this.log.warning(`Cannot withdraw from the worker registry: ${(err as Error).message}`);
    }
  }

  private async finish(p: Parts): Promise<void> {
    if (this.mode === 'stopped') return;
    this.mode = 'stopped';
    const bound = this.coldUntil === null ? Infinity : Math.max(100, this.coldUntil - Date.now());
    // the last task events go out before worker-offline
    await within(this.events?.flush() ?? Promise.resolve(), Math.min(bound, 2000));
    try {
      await within(this.stopPidbox?.() ?? Promise.resolve(), bound);
    } catch (err) {
      this.log.warning(`Cannot stop remote control cleanly: ${(err as Error).message}`);
    }
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.stalls?.stop();
    await within(this.flush(p), bound);
    p.settler.close();
    this.emit('stopped');
  }

  /** Resolves when this worker holds no reservation (useful in tests). */
  idle(): Promise<void> {
    return this.parts?.consumer.idle() ?? Promise.resolve();
  }
}
