/**
 * The worker's task events (`worker -E`), as Celery 5.2's worker sends them (docs/wire-format.md §10): the fields of
 * celery/worker/strategy.py (task-received) and celery/worker/request.py (task-started, -succeeded, -failed,
 * -retried, -revoked, -rejected), each with `uuid`, `hostname`, `clock`, `timestamp`, `utcoffset` and `pid`.
 *
 * Events of one event-loop turn are published together as one `task.multi` message (a list body, as a Python worker
 * batches them), after the turn, through the broker's ControlChannel (pidbox.ts sends the worker events the same
 * way). Publishing never blocks a task: send() only buffers; a failed publish loses those events (a monitor misses
 * them, as with a Python worker that cannot reach the broker) and is logged at debug.
 */
import { encodeEventBatch, eventBody, pyRepr, argsRepr, errorToException, formatTraceback } from '../protocol/index.ts';
import type { TaskMessage } from '../protocol/index.ts';
import type { ControlChannel } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';

/** Celery's logical clock for the events one process sends: forwarded once for every event. */
export class EventClock {
  private value = 0;
  forward(): number {
    return ++this.value;
  }
  get current(): number {
    return this.value;
  }
}

/** Python's `repr()` of an exception, as Celery's safe_repr writes it: `ValueError('boom')`. */
export function exceptionRepr(err: unknown): string {
  const info = errorToException(err);
  const args = Array.isArray(info.exc_message) ? info.exc_message : [info.exc_message];
  return `${info.exc_type}(${args.map((a) => pyRepr(a)).join(', ')})`;
}

/** A date header as Python's isoformat() would give it (the header itself when it is a string). */
function iso(header: unknown, date: Date | null): string | null {
  if (typeof header === 'string' && header !== '') return header;
  return date ? date.toISOString() : null;
}

export class TaskEvents {
  private buffer: Record<string, unknown>[] = [];
  private scheduled = false;
  private pending = new Set<Promise<void>>();

  constructor(private readonly hostname: string, private readonly control: ControlChannel,
    private readonly clock: EventClock, private readonly log: Logger) {}

  /** Buffer one event; the buffer goes out after this event-loop turn. */
  send(type: string, uuid: string, fields: Record<string, unknown> = {}): void {
    this.buffer.push(eventBody(type, this.hostname, { uuid, ...fields }, this.clock.forward()));
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.publish());
  }

  received(msg: TaskMessage): void {
    this.send('task-received', msg.id, {
      name: msg.task, args: msg.argsrepr ?? argsRepr(msg.args), kwargs: msg.kwargsrepr ?? pyRepr(msg.kwargs),
      root_id: msg.rootId, parent_id: msg.parentId, retries: msg.retries,
      eta: iso(msg.headers.eta, msg.eta), expires: iso(msg.headers.expires, msg.expires),
    });
  }

  started(msg: TaskMessage): void {
    this.send('task-started', msg.id);
  }

  succeeded(msg: TaskMessage, value: unknown, runtime: number): void {
    this.send('task-succeeded', msg.id, { result: pyRepr(value), runtime });
  }

  failed(msg: { id: string }, err: unknown, traceback?: string | null): void {
    this.send('task-failed', msg.id, { exception: exceptionRepr(err), traceback: traceback ?? formatTraceback(err) ?? '' });
  }

  /** `exc`: the error the retry was for; none (a plain `this.retry()`) is Python's None, as Celery sends it. */
  retried(msg: TaskMessage, exc: unknown): void {
    this.send('task-retried', msg.id, {
      exception: exc === undefined || exc === null ? 'None' : exceptionRepr(exc), traceback: formatTraceback(exc) ?? '',
    });
  }

  revoked(msg: { id: string }, how: { terminated: boolean; expired: boolean }): void {
    this.send('task-revoked', msg.id, { terminated: how.terminated, signum: how.terminated ? 15 : null, expired: how.expired });
  }

  rejected(msg: { id: string }, requeue = false): void {
    this.send('task-rejected', msg.id, { requeue });
  }

  private publish(): void {
    this.scheduled = false;
    const bodies = this.buffer;
    this.buffer = [];
    if (bodies.length === 0) return;
    const { routingKey, raw } = encodeEventBatch('task', this.hostname, bodies);
    const p: Promise<void> = this.control.event(routingKey, raw).catch((err: unknown) => {
      this.log.debug(`Cannot send ${bodies.length} task event(s): ${(err as Error).message}`);
    }).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Publish what is buffered and wait for what is on its way (at shutdown, before worker-offline). */
  async flush(): Promise<void> {
    this.publish();
    await Promise.all([...this.pending]);
  }
}
