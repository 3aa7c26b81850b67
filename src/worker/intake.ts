/**
 * Intake: what happens to each reserved message before it may run. In order:
 * 1. Too big or unreadable as a task message → dead letters (+ FAILURE MalformedMessage when it names an id).
 * 2. A task this worker does not know → FAILURE NotRegistered, acked.
 * 3. Revoked or expired → REVOKED, acked (a chord part still counts toward its chord). Revoked: known to this
 *    worker, or found in the broker's durable revoke store (revokes.ts: one lookup per reserved batch).
 * 4. Redelivered although its task already succeeded → acked without running again (Celery's
 *    worker_deduplicate_successful_tasks); recovered more than workerMaxRecoveries times → dead letters + FAILURE.
 * 5. Due more than HOLD_MS ahead → parked in the broker, its reservation released; due sooner → held in memory.
 * 6. Otherwise → the runner.
 * Messages the broker itself could not reserve (no delivery tag, not JSON) arrive as `Rejected`, already set aside.
 */
import { MalformedMessageError, NotRegisteredError, TaskRevokedError } from '../common/errors.ts';
import { decodeTaskMessage, envelopeLimit, errorToException, payloadBytes, type TaskMessage } from '../protocol/index.ts';
import type { Delivery, Rejected } from '../broker/broker.ts';
import { Running, type WorkerEnv } from './execute.ts';
import { joinChord } from './followups.ts';
import type { StoreRequest } from '../backend/backend.ts';
import { taskRecord } from './records.ts';
import { HOLD_MS, type EtaTiming } from './timing.ts';
import type { Revokes } from './revokes.ts';

export interface IntakeEnv extends WorkerEnv {
  timing: EtaTiming;
  revokes: Pick<Revokes, 'has' | 'check'>;
  /** The message may run (now, or when its held ETA comes). */
  run(run: Running): void;
  /** The reservation ended here without an ack: parked or dead-lettered. */
  ended(tag: string): void;
  /** A message is now held for its ETA and no longer counts against the prefetch window. */
  held(): void;
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

function malformed(reason: string): unknown {
  return { exc_type: 'MalformedMessage', exc_message: [reason], exc_module: 'celeriac' };
}

export class Intake {
  constructor(private readonly env: IntakeEnv) {}

  async accept(d: Delivery): Promise<void> {
    const { app, log } = this.env;
    let msg: TaskMessage;
    try {
      // maxMessageBytes is the payload's limit (what the producer sent, before base64)
      const size = Buffer.byteLength(d.raw);
      const payload = payloadBytes(d.raw);
      if (payload > app.conf.maxMessageBytes || size > envelopeLimit(app.conf.maxMessageBytes)) {
        throw new MalformedMessageError(`message carries ${payload} bytes of arguments (${size} bytes in all), over ` +
          `maxMessageBytes (${app.conf.maxMessageBytes})`, peekTaskId(d.raw));
      }
      msg = decodeTaskMessage(d.raw);
    } catch (err) {
      const reason = err instanceof MalformedMessageError ? err.reason : (err as Error).message;
      const id = err instanceof MalformedMessageError ? err.taskId : null;
      log.error(`Received invalid task message on queue ${d.queue}: ${reason}; moved to ${app.conf.deadLetterQueue}`);
      await this.deadLetter(d, reason, id ? taskRecord({ id }, 'FAILURE', malformed(reason)) : null);
      return;
    }
    const task = app.tasks.get(msg.task);
    const run = new Running(d, msg);
    if (!task) {
      log.error(`Received unregistered task of type '${msg.task}'.\nThe message has been ignored and discarded.`);
      this.env.events?.failed(msg, new NotRegisteredError(msg.task), '');
      await this.finishWithoutRunning(run, 'FAILURE', errorToException(new NotRegisteredError(msg.task)));
      return;
    }
    await this.env.revokes.check(msg.id);
    if (this.refuse(run)) return;
    if (msg.redelivered && await this.alreadyDone(run)) return;
    const delay = msg.eta ? msg.eta.getTime() - Date.now() : 0;
    if (delay > HOLD_MS && await this.park(run, msg.eta!.getTime())) return;
    if (log.enabled('info')) log.info(`Task ${msg.task}[${msg.id}] received`);
    this.env.events?.received(msg);
    if (delay > 0) {
      this.env.timing.hold(run, msg.eta!.getTime(), (due) => {
        if (!this.refuse(due)) this.env.run(due);
      });
      this.env.held();
      return;
    }
    this.env.run(run);
  }

  /** A message the broker could not reserve (no delivery tag, not JSON): already dead-lettered by the broker. */
  async rejected(r: Rejected): Promise<void> {
    this.env.log.error(`Received unreadable message on queue ${r.queue}: ${r.reason}; moved to ${this.env.app.conf.deadLetterQueue}`);
    const id = r.taskId ?? peekTaskId(r.raw);
    if (id) await this.storeNow(taskRecord({ id }, 'FAILURE', malformed(r.reason)));
  }

  /**
   * Revoked or expired: REVOKED without running, true. Checked at receipt (after the durable store was asked) and
   * again when the task's turn comes (a held ETA due, a slot free), from what the worker knows then.
   */
  refuse(run: Running): boolean {
    const { msg } = run;
    const why = this.env.revokes.has(msg.id) ? 'revoked'
      : msg.expires && msg.expires.getTime() <= Date.now() ? 'expired' : null;
    if (!why) return false;
    this.env.log.info(`Discarding revoked task: ${msg.task}[${msg.id}]${why === 'expired' ? ' (expired)' : ''}`);
    this.env.events?.revoked(msg, { terminated: false, expired: why === 'expired' });
    void this.finishWithoutRunning(run, 'REVOKED', errorToException(new TaskRevokedError(msg.id, why)));
    return true;
  }

  /**
   * A redelivered message: its task may have run to SUCCESS already (its holder stalled past the lease, and finished
   * after another worker took the message over), or it may keep stalling whoever holds it. Costs one result read,
   * for redelivered messages only.
   */
  private async alreadyDone(run: Running): Promise<boolean> {
    const { msg, delivery } = run;
    const { log, app } = this.env;
    let meta;
    try {
      meta = await this.env.backend.get(msg.id);
    } catch (err) {
      log.warning(`Cannot check whether ${msg.task}[${msg.id}] already succeeded: ${(err as Error).message}`);
      meta = null;
    }
    if (meta?.status === 'SUCCESS') {
      log.info(`Task ${msg.task}[${msg.id}] already succeeded: redelivered message acknowledged without running again`);
      this.env.settler.ack(delivery.tag, msg.id);
      return true;
    }
    const max = app.conf.workerMaxRecoveries;
    if (msg.recoveries <= max) return false;
    const reason = `recovered ${msg.recoveries} times from workers that stopped renewing its lease (over ` +
      `workerMaxRecoveries, ${max}): does the task block the event loop longer than the lease (${app.conf.leaseTimeout}s)?`;
    log.error(`Task ${msg.task}[${msg.id}] ${reason}; moved to ${app.conf.deadLetterQueue}`);
    // Celery's name for a task whose worker went away while running it
    await this.deadLetter(delivery, reason, taskRecord(msg, 'FAILURE',
      { exc_type: 'WorkerLostError', exc_message: [reason], exc_module: 'billiard.exceptions' }));
    return true;
  }

  /**
   * Park a message in the broker until `dueAt` (a far ETA, or a rate-limit turn far away), its reservation released;
   * false when the broker cannot (hold it in memory instead).
   */
  async park(run: Running, dueAt: number): Promise<boolean> {
    const { msg, delivery } = run;
    try {
      await this.env.broker.defer(delivery, dueAt);
    } catch (err) {
      this.env.log.warning(`Cannot park ${msg.task}[${msg.id}]: ${(err as Error).message}; holding it in memory`);
      return false;
    }
    this.env.ended(delivery.tag);
    this.env.log.info(`Task ${msg.task}[${msg.id}] scheduled for ${new Date(dueAt).toISOString()}`);
    this.env.timing.promoteBy(dueAt);
    return true;
  }

  /** Set the message aside with its reason, after storing `failure` (the record its caller will read), if any. */
  private async deadLetter(d: Delivery, reason: string, failure: StoreRequest | null): Promise<void> {
    const { log, app } = this.env;
    if (failure) await this.storeNow(failure);
    if (failure) this.env.events?.rejected({ id: failure.taskId });
    try {
      await this.env.broker.deadLetter(d, reason);
      this.env.ended(d.tag);
    } catch (e) {
      // the reservation stays; recovery brings the message back and it is judged again
      log.error(`Cannot move message to ${app.conf.deadLetterQueue}: ${(e as Error).message}`);
    }
  }

  private async storeNow(record: StoreRequest): Promise<void> {
    try {
      await this.env.records.now(record);
    } catch (err) {
      this.env.log.error(`Cannot store ${record.meta.status} for ${record.taskId}: ${(err as Error).message}`);
    }
  }

  /** The outcome of a task that never ran: stored, then acked. */
  private async finishWithoutRunning(run: Running, status: 'FAILURE' | 'REVOKED', exc: unknown): Promise<void> {
    const { msg } = run;
    const { app, backend, records, settler } = this.env;
    if (status === 'REVOKED' && msg.embed.chord && msg.group) {
      // a revoked chord part still counts, or the chord would wait for ever (Celery fails the body with ChordError)
      try {
        await records.now(taskRecord(msg, status, exc));
        await joinChord(app, backend, msg, status, exc, this.env.log);
      } catch (err) {
        this.env.log.error(`Cannot complete chord part ${msg.id}: ${(err as Error).message}`);
        return; // the reservation stays; the message comes back and is judged again
      }
      settler.ack(run.delivery.tag, msg.id);
      return;
    }
    if (!msg.ignoreResult && app.tasks.get(msg.task)?.resolved.ignoreResult !== true) {
      records.batched(taskRecord(msg, status, exc));
    }
    settler.ack(run.delivery.tag, msg.id);
  }
}
