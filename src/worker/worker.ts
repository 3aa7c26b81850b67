/**
 * The embeddable worker. Duties, in order:
 * 1. Reserve messages in batches while the prefetch window (concurrency × multiplier) has room.
 * 2. Check each message: unreadable → dead-letter (+ FAILURE when it names an id); unknown task → FAILURE
 *    NotRegistered; expired or revoked → REVOKED; future ETA → hold until due; otherwise queue it to run.
 * 3. Run up to `concurrency` tasks at once on the event loop (executeTask), settling results and acks in batches.
 * 4. Renew the leases of everything it holds; recover reservations whose holders died.
 * 5. Warm shutdown: stop reserving, give back what has not started, let running tasks finish within the timeout;
 *    cold shutdown (second request, or timeout): abort running tasks and give their messages back too.
 *
 * Modes: running → stopping (warm) → stopped; running/stopping → stopped (cold).
 */
import { EventEmitter } from 'node:events';
import { MalformedMessageError, NotRegisteredError, TaskRevokedError } from '../common/errors.ts';
import { expandNodeName } from '../common/ids.ts';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { decodeTaskMessage, errorToException, makeResultMeta, type TaskMessage } from '../protocol/index.ts';
import type { Broker, Delivery, Rejected } from '../broker/broker.ts';
import type { ResultBackend } from '../backend/backend.ts';
import type { Celeriac } from '../app/app.ts';
import type { Task } from '../task/task.ts';
import { Settler } from './settler.ts';
import { executeTask, fail, Running, type ExecEnv } from './execute.ts';
import { joinChord } from './followups.ts';
import { startPidbox, type PidboxWorker } from './pidbox.ts';

export interface WorkerOptions {
  /** Tasks in flight at once (`-c`). */
  concurrency?: number;
  /** Queues to consume (`-Q`), in priority of attention. */
  queues?: string[];
  /** Node name (`-n`), with Celery's %h/%n/%d. */
  hostname?: string;
  prefetchMultiplier?: number;
  logger?: Logger;
  /** Seconds a warm shutdown waits for running tasks before it turns cold. */
  shutdownTimeout?: number;
}

/** The task id of a message we refuse, when it names one, so the FAILURE can be stored under it. */
function peekTaskId(raw: string): string | null {
  try {
    const id = JSON.parse(raw)?.headers?.id;
    return typeof id === 'string' && id !== '' ? id : null;
  } catch {
    return null;
  }
}

type Mode = 'idle' | 'running' | 'stopping' | 'stopped';

const RESERVE_WAIT_MS = 1000;
/** ETAs closer than this are held in memory (lease renewed); farther ones are parked in the broker. */
const HOLD_MS = 1000;
/** The longest a due parked message waits for a promotion sweep. */
const PROMOTE_EVERY_MS = 1000;

export class Worker extends EventEmitter implements PidboxWorker {
  readonly hostname: string;
  /** Unique per process: several workers may share a node name. */
  readonly instance: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly prefetch: number;
  readonly log: Logger;
  private readonly shutdownTimeout: number;
  private mode: Mode = 'idle';
  private broker!: Broker;
  private backend!: ResultBackend;
  private settler!: Settler;
  private env!: ExecEnv;
  /** Every message this worker holds a reservation for, until it is acked, requeued or dead-lettered. */
  private readonly reserved = new Map<string, Delivery>();
  private readonly waiting: Array<{ run: Running; acksLate: boolean }> = [];
  private readonly running = new Map<string, Running>();
  private readonly held = new Map<string, { timer: NodeJS.Timeout; run: Running }>();
  /** Finished tasks whose ack is not yet confirmed. */
  private readonly settling = new Set<string>();
  readonly revoked = new Set<string>();
  readonly processed = new Map<string, number>();
  private wakeConsumer: (() => void) | null = null;
  private consumerDone: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private promoteTimer: NodeJS.Timeout | null = null;
  private promoteAt = Infinity;
  private idleWaiters: Array<() => void> = [];
  private stopPidbox: (() => Promise<void>) | null = null;
  startedAt = Date.now();

  constructor(readonly app: Celeriac, options: WorkerOptions = {}) {
    super();
    this.hostname = expandNodeName(options.hostname ?? 'celery@%h');
    this.instance = `${this.hostname}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    this.queues = options.queues?.length ? options.queues : [app.conf.taskDefaultQueue];
    this.concurrency = options.concurrency ?? app.conf.workerConcurrency;
    this.prefetch = Math.max(1, Math.round(this.concurrency * (options.prefetchMultiplier ?? app.conf.workerPrefetchMultiplier)));
    this.log = options.logger ?? defaultLogger;
    this.shutdownTimeout = options.shutdownTimeout ?? 60;
  }

  get state(): Mode {
    return this.mode;
  }

  /** Connects, recovers what dead workers left, and starts consuming. Resolves once consuming. */
  async start(): Promise<void> {
    if (this.mode !== 'idle') throw new Error(`worker already ${this.mode}`);
    this.broker = await this.app.broker();
    this.backend = await this.app.backend();
    this.settler = new Settler(this.broker, () => this.app.backend(), this.log, (tags) => this.onAcked(tags));
    this.env = { app: this.app, broker: this.broker, backend: this.backend, settler: this.settler, log: this.log,
      hostname: this.hostname, parked: (at) => this.schedulePromotion(at) };
    await this.broker.declareQueues(this.queues);
    await this.broker.heartbeat(this.instance, this.app.conf.leaseTimeout * 1000);
    await this.recover();
    this.mode = 'running';
    const lease = this.app.conf.leaseTimeout * 1000;
    this.timers.push(setInterval(() => void this.renew(), Math.max(200, lease / 3)));
    this.timers.push(setInterval(() => void this.recover(), Math.max(500, lease / 2)));
    void this.promote();
    this.consumerDone = this.consume();
    this.startedAt = Date.now();
    if (this.broker.control) {
      try {
        this.stopPidbox = await startPidbox(this, this.broker.control, this.log);
      } catch (err) {
        this.log.warning(`Remote control is off: ${(err as Error).message}`);
      }
    }
    this.log.info(`${this.hostname} ready.`);
    this.emit('ready');
  }

  /** In-flight work: reserved by this worker and not yet settled. */
  get size(): { reserved: number; running: number; waiting: number; held: number } {
    return { reserved: this.reserved.size, running: this.running.size, waiting: this.waiting.length, held: this.held.size };
  }

  activeRequests(): Running[] {
    return [...this.running.values()];
  }

  registered(): string[] {
    return [...this.app.tasks.keys()].sort();
  }

  active(): Running[] {
    return [...this.running.values()];
  }

  reservedRequests(): Running[] {
    return this.waiting.map((w) => w.run);
  }

  scheduled(): Array<{ eta: Date; run: Running }> {
    return [...this.held.values()].map((h) => ({ eta: h.run.msg.eta!, run: h.run }));
  }

  /**
   * Celery's revoke: the id is remembered, so the task is discarded (REVOKED) when it arrives or comes due; with
   * `terminate` a running one gets its AbortSignal fired, REVOKED "terminated" is stored, and its outcome is ignored.
   */
  revoke(taskId: string, terminate = false): void {
    this.revoked.add(taskId);
    if (!terminate) return;
    for (const run of this.running.values()) {
      if (run.msg.id !== taskId) continue;
      run.terminated = true;
      run.abort(new TaskRevokedError(taskId, 'terminated'));
      this.log.info(`Terminating ${run.msg.task}[${taskId}] (revoked)`);
      this.settler.store({ taskId, meta: makeResultMeta({ taskId, status: 'REVOKED',
        result: errorToException(new TaskRevokedError(taskId, 'terminated')), traceback: null, groupId: run.msg.group,
        parentId: run.msg.parentId }) });
    }
  }

  shutdown(): void {
    this.log.warning('worker: Warm shutdown requested by remote control');
    void this.stop();
  }

  private async renew(): Promise<void> {
    try {
      await this.broker.heartbeat(this.instance, this.app.conf.leaseTimeout * 1000);
      if (this.reserved.size === 0) return;
      await this.broker.renew([...this.reserved.keys()]);
    } catch (err) {
      this.log.warning(`Cannot renew reservations: ${(err as Error).message}`);
    }
  }

  private async recover(): Promise<void> {
    try {
      const n = await this.broker.recover();
      if (n > 0) this.log.info(`Restored ${n} unacknowledged message(s)`);
    } catch (err) {
      this.log.warning(`Cannot recover unacknowledged messages: ${(err as Error).message}`);
    }
  }

  /** Move due parked messages back to their queues, then sleep until the next is due (at most a second). */
  private async promote(): Promise<void> {
    this.promoteTimer = null;
    this.promoteAt = Infinity;
    if (this.mode === 'stopped' || this.mode === 'stopping') return;
    let next = Date.now() + PROMOTE_EVERY_MS;
    try {
      const { moved, nextDueAt } = await this.broker.promoteDue();
      if (moved > 0) this.log.debug(`Moved ${moved} due message(s) back to their queues`);
      if (nextDueAt !== null) next = Math.min(next, nextDueAt);
    } catch (err) {
      this.log.warning(`Cannot move due messages: ${(err as Error).message}`);
    }
    this.schedulePromotion(next);
  }

  private schedulePromotion(at: number): void {
    if (this.mode === 'stopped' || this.mode === 'stopping' || at >= this.promoteAt) return;
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    this.promoteAt = at;
    this.promoteTimer = setTimeout(() => void this.promote(), Math.max(0, at - Date.now()));
  }

  /**
   * What counts against the prefetch window: reserved, not held for an ETA, and not finished. Finished tasks whose
   * result and ack are still on their way do not block new reservations (that would serialise the worker on Redis
   * round trips), but a backlog of them beyond another window's worth does (backpressure when Redis is slow).
   */
  private get inWindow(): number {
    const unsettled = this.settling.size > this.prefetch ? this.settling.size : 0;
    return this.reserved.size - this.held.size - this.settling.size + unsettled;
  }

  private async consume(): Promise<void> {
    let queues = [...this.queues];
    let failures = 0;
    while (this.mode === 'running') {
      const room = this.prefetch - this.inWindow;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
        this.wakeConsumer = null;
        continue;
      }
      let batch;
      try {
        batch = await this.broker.reserve(queues, room, RESERVE_WAIT_MS);
        if (failures > 0) this.log.info('Connection to broker restored; consuming again.');
        failures = 0;
      } catch (err) {
        if (this.mode !== 'running') break;
        failures++;
        const delay = Math.min(100 * 2 ** Math.min(failures, 5), 2000);
        this.log.error(`consumer: Cannot reserve messages: ${(err as Error).message}. Trying again in ${delay / 1000}s...`);
        await new Promise((r) => setTimeout(r, delay));
        continue;
      }
      for (const r of batch.rejected) void this.onRejected(r);
      for (const d of batch.deliveries) {
        this.reserved.set(d.tag, d);
        void this.accept(d);
      }
      if (batch.deliveries.length > 0 && queues.length > 1) queues = [...queues.slice(1), queues[0]];
    }
  }

  private onAcked(tags: string[]): void {
    for (const t of tags) {
      this.reserved.delete(t);
      this.settling.delete(t);
    }
    if (this.wakeConsumer && this.inWindow < this.prefetch) this.wakeConsumer();
    if (this.reserved.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private release(tag: string): void {
    this.onAcked([tag]);
  }

  /** A message the broker could not reserve (no delivery tag, not JSON): already dead-lettered by the broker. */
  private async onRejected(r: Rejected): Promise<void> {
    this.log.error(`Received unreadable message on queue ${r.queue}: ${r.reason}; moved to ${this.app.conf.deadLetterQueue}`);
    const id = peekTaskId(r.raw);
    if (id) await this.storeFailure(id, { exc_type: 'MalformedMessage', exc_message: [r.reason], exc_module: 'celeriac' });
  }

  private async storeFailure(taskId: string, exc: unknown): Promise<void> {
    try {
      await this.backend.store([{ taskId, meta: makeResultMeta({ taskId, status: 'FAILURE', result: exc, traceback: null }) }]);
    } catch (err) {
      this.log.error(`Cannot store FAILURE for ${taskId}: ${(err as Error).message}`);
    }
  }

  private async accept(d: Delivery): Promise<void> {
    let msg: TaskMessage;
    try {
      if (Buffer.byteLength(d.raw) > this.app.conf.maxMessageBytes) {
        throw new MalformedMessageError(
          `message of ${Buffer.byteLength(d.raw)} bytes is over maxMessageBytes (${this.app.conf.maxMessageBytes})`,
          peekTaskId(d.raw));
      }
      msg = decodeTaskMessage(d.raw);
    } catch (err) {
      await this.deadLetter(d, err);
      return;
    }
    const task = this.app.tasks.get(msg.task);
    const run = new Running(d, msg);
    if (!task) {
      this.log.error(`Received unregistered task of type '${msg.task}'.\nThe message has been ignored and discarded.`);
      await this.finishWithoutRunning(run, 'FAILURE', errorToException(new NotRegisteredError(msg.task)));
      return;
    }
    const why = this.revokedReason(msg);
    if (why) {
      await this.discard(run, why);
      return;
    }
    const acksLate = task.options.acksLate ?? this.app.conf.taskAcksLate;
    const delay = msg.eta ? msg.eta.getTime() - Date.now() : 0;
    if (delay > HOLD_MS) {
      try {
        await this.broker.defer(d, msg.eta!.getTime());
        this.release(d.tag);
        this.log.info(`Task ${msg.task}[${msg.id}] scheduled for ${msg.eta!.toISOString()}`);
        this.schedulePromotion(msg.eta!.getTime());
        return;
      } catch (err) {
        // could not park: hold it in memory instead (its lease is renewed like any reservation)
        this.log.warning(`Cannot park ${msg.task}[${msg.id}]: ${(err as Error).message}; holding it in memory`);
      }
    }
    if (this.log.enabled('info')) this.log.info(`Task ${msg.task}[${msg.id}] received`);
    if (delay > 0) {
      this.hold(run, acksLate, msg.eta!.getTime());
      if (this.wakeConsumer) this.wakeConsumer();
      return;
    }
    this.enqueue(run, acksLate);
  }

  /** Keep a soon-due message in memory; timers may fire a little early, so the due time is checked again. */
  private hold(run: Running, acksLate: boolean, dueAt: number): void {
    const tag = run.delivery.tag;
    const timer = setTimeout(() => {
      if (Date.now() < dueAt) {
        this.hold(run, acksLate, dueAt);
        return;
      }
      this.held.delete(tag);
      if (this.mode === 'running') this.enqueue(run, acksLate);
    }, Math.min(Math.max(1, dueAt - Date.now()), 2 ** 31 - 1));
    this.held.set(tag, { timer, run });
  }

  private async deadLetter(d: Delivery, err: unknown): Promise<void> {
    const reason = err instanceof MalformedMessageError ? err.reason : (err as Error).message;
    this.log.error(`Received invalid task message on queue ${d.queue}: ${reason}; moved to ${this.app.conf.deadLetterQueue}`);
    if (err instanceof MalformedMessageError && err.taskId) {
      await this.storeFailure(err.taskId, { exc_type: 'MalformedMessage', exc_message: [reason], exc_module: 'celeriac' });
    }
    try {
      await this.broker.deadLetter(d, reason);
      this.release(d.tag);
    } catch (e) {
      // the reservation stays; recovery brings the message back and it is judged again
      this.log.error(`Cannot move message to ${this.app.conf.deadLetterQueue}: ${(e as Error).message}`);
    }
  }

  private revokedReason(msg: TaskMessage): 'revoked' | 'expired' | null {
    if (this.revoked.has(msg.id)) return 'revoked';
    if (msg.expires && msg.expires.getTime() <= Date.now()) return 'expired';
    return null;
  }

  /** REVOKED without running: at receipt, or when a held or queued message's time comes (Celery checks both). */
  private async discard(run: Running, why: 'revoked' | 'expired'): Promise<void> {
    const { msg } = run;
    this.log.info(`Discarding revoked task: ${msg.task}[${msg.id}]${why === 'expired' ? ' (expired)' : ''}`);
    await this.finishWithoutRunning(run, 'REVOKED', errorToException(new TaskRevokedError(msg.id, why)));
  }

  private async finishWithoutRunning(run: Running, status: 'FAILURE' | 'REVOKED', exc: unknown): Promise<void> {
    const { msg } = run;
    if (status === 'REVOKED' && msg.embed.chord && msg.group) {
      // a revoked chord part still counts, or the chord would wait for ever (Celery fails the body with ChordError)
      try {
        await this.backend.store([{ taskId: msg.id, meta: makeResultMeta({ taskId: msg.id, status, result: exc,
          traceback: null, groupId: msg.group, parentId: msg.parentId }) }]);
        await joinChord(this.app, this.backend, msg, status, exc);
      } catch (err) {
        this.log.error(`Cannot complete chord part ${msg.id}: ${(err as Error).message}`);
        return; // the reservation stays; the message comes back and is judged again
      }
      this.settler.ack(run.delivery.tag);
      return;
    }
    if (!run.msg.ignoreResult && this.app.tasks.get(msg.task)?.options.ignoreResult !== true) {
      this.settler.store({ taskId: run.msg.id, meta: makeResultMeta({ taskId: run.msg.id, status, result: exc, traceback: null,
        groupId: run.msg.group, parentId: run.msg.parentId }) });
    }
    this.settler.ack(run.delivery.tag);
  }

  private enqueue(run: Running, acksLate: boolean): void {
    if (this.running.size < this.concurrency) this.start1(run, acksLate);
    else this.waiting.push({ run, acksLate });
  }

  private start1(run: Running, acksLate: boolean): void {
    const { msg } = run;
    const why = this.revokedReason(msg);
    if (why) {
      void this.discard(run, why);
      this.startNext();
      return;
    }
    const task = this.app.tasks.get(msg.task)!;
    this.running.set(run.delivery.tag, run);
    void this.runToEnd(run, task, acksLate);
  }

  private async runToEnd(run: Running, task: Task, acksLate: boolean): Promise<void> {
    const { msg } = run;
    try {
      await executeTask(this.env, run, task, acksLate);
    } catch (err) {
      // a failure of our own (e.g. publishing a retry failed): report it on the task, never crash the worker
      await fail(this.env, run, msg.task, err).catch(() => {});
      if (acksLate) this.settler.ack(run.delivery.tag);
    }
    this.running.delete(run.delivery.tag);
    if (this.reserved.has(run.delivery.tag)) this.settling.add(run.delivery.tag);
    if (this.wakeConsumer && this.inWindow < this.prefetch) this.wakeConsumer();
    this.processed.set(msg.task, (this.processed.get(msg.task) ?? 0) + 1);
    if (this.listenerCount('task-done') > 0) this.emit('task-done', run);
    this.startNext();
  }

  private startNext(): void {
    const next = this.waiting.shift();
    if (next && this.mode !== 'stopped') this.start1(next.run, next.acksLate);
  }

  /**
   * Warm shutdown: stop reserving, give back everything not started, wait for running tasks (up to the timeout).
   * A second call, or the timeout, makes it cold: running tasks are aborted and their messages given back.
   */
  async stop(options: { cold?: boolean } = {}): Promise<void> {
    if (this.mode === 'stopped' || this.mode === 'idle') {
      this.mode = 'stopped';
      return;
    }
    if (this.mode === 'stopping' || options.cold) {
      this.mode = 'stopping';
      await this.goCold();
      return;
    }
    this.mode = 'stopping';
    this.broker.interrupt();
    this.wakeConsumer?.();
    await this.consumerDone;
    await this.giveBack([...this.waiting.splice(0).map((w) => w.run), ...this.takeHeld()]);
    const deadline = setTimeout(() => void this.goCold(), this.shutdownTimeout * 1000);
    await this.drained();
    clearTimeout(deadline);
    await this.withdraw();
    await this.finish();
  }

  private takeHeld(): Running[] {
    const runs = [...this.held.values()].map((h) => {
      clearTimeout(h.timer);
      return h.run;
    });
    this.held.clear();
    return runs;
  }

  private async giveBack(runs: Running[]): Promise<void> {
    if (runs.length === 0) return;
    try {
      await this.broker.requeue(runs.map((r) => r.delivery));
      for (const r of runs) this.reserved.delete(r.delivery.tag);
      this.log.info(`Restoring ${runs.length} unacknowledged message(s)`);
    } catch (err) {
      this.log.error(`Cannot give back ${runs.length} message(s): ${(err as Error).message}; they return after the lease`);
    }
  }

  private async drained(): Promise<void> {
    while (this.running.size > 0 && this.mode !== 'stopped') {
      await new Promise((resolve) => this.once('task-done', resolve));
    }
    await this.settler.flush().catch(() => {});
  }

  private async goCold(): Promise<void> {
    if (this.mode === 'stopped') return;
    this.broker.interrupt();
    this.wakeConsumer?.();
    const runs = [...this.running.values()];
    for (const r of runs) r.abort(new Error('worker shutting down'));
    await this.settler.flush().catch(() => {});
    // messages still reserved (running ones that were not acked early) go back for another worker
    const back = runs.filter((r) => this.reserved.has(r.delivery.tag));
    await this.giveBack([...back, ...this.waiting.splice(0).map((w) => w.run), ...this.takeHeld()]);
    await this.withdraw();
    await this.finish();
  }

  /** The last celeriac worker to leave hands parked messages back to their queues (mixed fleets with Python). */
  private async withdraw(): Promise<void> {
    try {
      const { unparked } = await this.broker.leave(this.instance);
      if (unparked > 0) this.log.info(`Last celeriac worker leaving: ${unparked} scheduled message(s) back on their queues`);
    } catch (err) {
      this.log.warning(`Cannot withdraw from the worker registry: ${(err as Error).message}`);
    }
  }

  private async finish(): Promise<void> {
    if (this.mode === 'stopped') return;
    this.mode = 'stopped';
    await this.stopPidbox?.().catch(() => {});
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.settler.flush().catch(() => {});
    this.settler.close();
    this.emit('stopped');
  }

  /** Resolves when this worker holds no reservation (useful in tests). */
  idle(): Promise<void> {
    if (this.reserved.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
