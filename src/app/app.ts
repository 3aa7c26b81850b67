/**
 * The app: configuration, the task registry, and the producer side (applyAsync/sendTask/AsyncResult).
 * Brokers and backends are created on first use from their URLs, through the registries, so an app that only
 * sends tasks never opens a result connection it does not need, and `sqlite` code loads only for sqlite:// URLs.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { assertJson } from '../common/json.ts';
import { producerOrigin, uuid } from '../common/ids.ts';
import {
  decodeControlReply, encodeControlRequest, encodeTaskMessage, envelopeLimit, payloadBytes, type Embed, type NewTaskMessage,
} from '../protocol/index.ts';
import type { Broker, OutgoingMessage } from '../broker/broker.ts';
import { createBroker } from '../broker/registry.ts';
import type { ResultBackend } from '../backend/backend.ts';
import { createBackend } from '../backend/registry.ts';
import { AsyncResult, type RevokeOptions } from '../task/async-result.ts';
import { Task, type Call, type TaskHandler, type TaskProducer } from '../task/task.ts';
import { Signature, type SignatureOptions } from '../task/signature.ts';
import { GroupResult } from '../task/group-result.ts';
import {
  checkApplyOptions, checkTaskOptions, refuseAmbiguousKwargs, type ApplyOptions, type TaskOptions,
} from '../task/options.ts';
import { closest } from '../common/closest.ts';
import { resolveConfig, resolveTaskOptions, type CeleriacConfig, type ResolvedConfig } from './config.ts';
import { Router } from './routing.ts';
import { registerBuiltins } from './builtins.ts';
import { sendSentEvents } from './sent-events.ts';

export interface PreparedMessage extends OutgoingMessage {
  id: string;
}

function toDate(value: Date | string, what: string): Date {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new CeleriacError(ErrorCode.BadOption, `${what} is not a valid date: ${String(value)}`);
  return d;
}

function seconds(value: number, what: string): number {
  if (!Number.isFinite(value)) throw new CeleriacError(ErrorCode.BadOption, `${what} must be a finite number of seconds, got ${value}`);
  return value;
}

const CALL_KEYS = ['args', 'kwargs', 'options'];

/** One `{ args, kwargs, options }` of `applyMany`: no unknown key (a misspelt `options` would drop them), checked options. */
function checkCall(c: Call<unknown[]>, where: string): void {
  if (c === null || typeof c !== 'object') {
    throw new CeleriacError(ErrorCode.BadOption, `${where} must be an argument list or { args, kwargs, options }`);
  }
  for (const key in c) {
    if (!CALL_KEYS.includes(key)) {
      const hint = closest(key, CALL_KEYS);
      throw new CeleriacError(ErrorCode.BadOption, `${where}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; ` +
        `known keys: ${CALL_KEYS.join(', ')}`);
    }
  }
  if (c.options != null) checkApplyOptions(c.options, where);
}

/** The first stack frame outside this module: the user's file that called `new Celeriac(...)`. */
function callerFile(): string | null {
  const here = import.meta.url;
  for (const line of (new Error().stack ?? '').split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?$/.exec(line.trim());
    if (!m) continue;
    const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (pathToFileURL(file).href !== here) return file;
  }
  return null;
}

export class Celeriac implements TaskProducer {
  readonly main: string;
  readonly conf: ResolvedConfig;
  readonly tasks = new Map<string, Task>();
  private readonly router: Router;
  private readonly origin = producerOrigin();
  /** The file that created the app: `include` paths are relative to it, wherever `-A` points. @internal */
  readonly definedIn: string | null = callerFile();
  private brokerPromise: Promise<Broker> | null = null;
  private backendPromise: Promise<ResultBackend> | null = null;

  constructor(main: string, config: CeleriacConfig = {}) {
    this.main = main;
    this.conf = resolveConfig(config);
    this.router = new Router(this.conf.taskRoutes);
    registerBuiltins(this);
  }

  /** Define a task. `name` is the wire name; the returned task is typed by the handler's parameters and result. */
  task<A extends unknown[], R>(name: string, handler: TaskHandler<A, R>, options: TaskOptions = {}): Task<A, Awaited<R>> {
    if (typeof name !== 'string' || name.length === 0) {
      throw new CeleriacError(ErrorCode.BadOption, 'a task needs a non-empty name');
    }
    if (this.tasks.has(name)) {
      throw new CeleriacError(ErrorCode.DuplicateTask, `task "${name}" is already registered in app "${this.main}"`);
    }
    if (typeof handler !== 'function') {
      throw new CeleriacError(ErrorCode.BadOption, `task "${name}": the handler must be a function`);
    }
    checkTaskOptions(options, `task "${name}"`);
    const task = new Task<A, Awaited<R>>(name, handler as TaskHandler<A, unknown>, options, this,
      resolveTaskOptions(options, this.conf));
    this.tasks.set(name, task as unknown as Task);
    return task;
  }

  /** Celery's `app.GroupResult.restore(id)`: a group saved with `GroupResult.save()`, from any process. */
  get GroupResult(): { restore<R = unknown>(id: string): Promise<GroupResult<R> | null> } {
    return { restore: <R>(id: string) => GroupResult.restore<R>(this, id) };
  }

  /**
   * Revoke tasks (Celery's `app.control.revoke`): stored in the broker's revoke store for `expires` seconds (default
   * 10800, Celery's REVOKE_EXPIRES), so celeriac workers that start later refuse them too, and broadcast where the
   * broker has remote control, so running workers, Python ones included, hear it at once. With `terminate`, a
   * running task is stopped (`signal` as Celery's, SIGTERM by default). Rejects when it could be neither stored nor
   * sent (after trying both). `AsyncResult.revoke()`, `GroupResult.revoke()`, `Control.revoke()` and `celeriac
   * revoke` all come here.
   */
  async revoke(taskIds: string | string[], o: RevokeOptions = {}): Promise<void> {
    const ids = Array.isArray(taskIds) ? taskIds : [taskIds];
    if (ids.length === 0) return;
    const broker = await this.broker();
    const [stored, sent] = await Promise.allSettled([
      broker.storeRevokes(ids, o.expires === undefined ? undefined : o.expires * 1000),
      broker.control
        ? this.cast('revoke', { task_id: ids.length === 1 ? ids[0] : ids, terminate: o.terminate ?? false, signal: o.signal ?? 'SIGTERM' })
        : Promise.resolve(),
    ]);
    if (stored.status === 'rejected') throw stored.reason;
    if (sent.status === 'rejected') throw sent.reason;
  }

  /**
   * A remote-control command that expects no reply (Celery's "cast"), to every worker or the `destination` nodes.
   * @internal Control.cast and revoke use it.
   */
  async cast(method: string, args: Record<string, unknown> = {}, destination?: string[]): Promise<void> {
    const raw = encodeControlRequest({ method, arguments: args, destination: destination ?? null, pattern: null,
      matcher: null }, 0);
    await (await this.controlChannel()).request(raw, null, 0);
  }

  private async controlChannel() {
    const broker = await this.broker();
    if (!broker.control) {
      throw new CeleriacError(ErrorCode.BadOption, `remote control needs a Redis or SQLite broker (this app uses ${broker.displayUrl})`);
    }
    return broker.control;
  }

  /**
   * Send a remote-control command and gather `{node: reply}` from the workers that answer within `timeout` ms
   * (default 1000), or until `limit` replied. E_BAD_OPTION on a broker without remote control (memory://).
   * @internal Control.broadcast and the worker's mingle use it.
   */
  async broadcast(method: string, args: Record<string, unknown> = {},
    o: { destination?: string[]; timeout?: number; limit?: number } = {}): Promise<Record<string, unknown>> {
    const control = await this.controlChannel();
    const oid = uuid();
    const ticket = uuid();
    const timeout = o.timeout ?? 1000;
    const raw = encodeControlRequest({
      method, arguments: args, destination: o.destination ?? null, pattern: null, matcher: null, ticket,
      reply_to: { exchange: 'reply.celery.pidbox', routing_key: oid },
    }, timeout / 1000);
    const replies = await control.request(raw, oid, timeout, o.limit ?? o.destination?.length);
    const out: Record<string, unknown> = {};
    for (const r of replies) {
      try {
        const { ticket: t, replies: body } = decodeControlReply(r);
        if (t === ticket) Object.assign(out, body);
      } catch {
        // a reply we cannot read is not an answer
      }
    }
    return out;
  }

  /** The options a registered task was defined with (canvas routing). @internal */
  taskDefaults(name: string): TaskOptions | undefined {
    return this.tasks.get(name)?.options;
  }

  /** A signature of any task by name, also one defined only elsewhere (e.g. in Python): Celery's `app.signature`. */
  signature<R = unknown>(name: string, args: unknown[] = [], kwargs: Record<string, unknown> = {},
    options: SignatureOptions = {}): Signature<R> {
    return new Signature<R>(this, {
      task: name, args: [...args], kwargs: { ...kwargs }, options: {}, subtask_type: null, immutable: false, chord_size: null,
    }).set(options);
  }

  /** The broker, connected on first use (one per app). For tools and tests; tasks never need it. */
  broker(): Promise<Broker> {
    this.brokerPromise ??= createBroker(this.conf.broker, {
      visibilityTimeout: this.conf.visibilityTimeout,
      leaseTimeout: this.conf.leaseTimeout,
      deadLetterQueue: this.conf.deadLetterQueue,
      deadLetterLimit: this.conf.deadLetterLimit,
      maxMessageBytes: envelopeLimit(this.conf.maxMessageBytes),
    });
    return this.brokerPromise;
  }

  /** The result backend, connected on first use (one per app). */
  backend(): Promise<ResultBackend> {
    this.backendPromise ??= createBackend(this.conf.backend, { resultExpires: this.conf.resultExpires });
    return this.backendPromise;
  }

  /** The result of the task with this id, sent by anyone (Celery's `app.AsyncResult(id)`). */
  AsyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }

  /**
   * Send a task by name, e.g. one only a Python worker knows (Celery's `send_task`). Options are checked as in
   * `applyAsync`, and, as there, kwargs made only of option names with no options argument are E_AMBIGUOUS_OPTIONS.
   */
  sendTask<R = unknown>(name: string, args: unknown[] = [], kwargs: Record<string, unknown> = {},
    options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    if (arguments.length < 4) {
      try {
        refuseAmbiguousKwargs(kwargs, name, `sendTask(${JSON.stringify(name)}, args`);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.applyTask(name, args ?? [], kwargs ?? {}, options ?? {}, this.tasks.get(name)?.options) as Promise<AsyncResult<R>>;
  }

  /**
   * One call from a user: options are checked (names and values, E_BAD_OPTION) before the message is built.
   * @internal Task.applyAsync and sendTask call it; use those.
   */
  async applyTask(name: string, args: unknown[], kwargs: Record<string, unknown>, options: ApplyOptions,
    defaults: TaskOptions = {}): Promise<AsyncResult<unknown>> {
    checkApplyOptions(options, name);
    const msg = this.prepareMessage(name, args, kwargs, options, defaults);
    const broker = await this.broker();
    await broker.publish([msg]);
    if (this.conf.taskSendSentEvent) sendSentEvents(broker, [msg]);
    return new AsyncResult(msg.id, this);
  }

  /** @internal Task.applyMany calls it; use that. */
  async applyMany(name: string, calls: Call<unknown[]>[], defaults: TaskOptions = {}): Promise<AsyncResult<unknown>[]> {
    if (!Array.isArray(calls)) throw new CeleriacError(ErrorCode.BadOption, `applyMany of ${name} takes an array of calls`);
    const msgs = calls.map((c, i) => {
      checkCall(c, `${name} applyMany call [${i}]`);
      return this.prepareMessage(name, c.args, c.kwargs ?? {}, c.options ?? {}, defaults);
    });
    if (msgs.length > 0) {
      const broker = await this.broker();
      await broker.publish(msgs);
      if (this.conf.taskSendSentEvent) sendSentEvents(broker, msgs);
    }
    return msgs.map((m) => new AsyncResult(m.id, this));
  }

  /**
   * Build the wire message for a call without sending it (workers use it for chains and callbacks).
   * @internal
   */
  prepareMessage(name: string, args: unknown[], kwargs: Record<string, unknown>, options: ApplyOptions,
    defaults: TaskOptions = {}, embed?: Partial<Embed>): PreparedMessage {
    if (!Array.isArray(args)) throw new CeleriacError(ErrorCode.BadOption, `args of ${name} must be an array`);
    if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) {
      throw new CeleriacError(ErrorCode.BadOption, `kwargs of ${name} must be an object`);
    }
    assertJson(args, 'args');
    assertJson(kwargs, 'kwargs');
    if (options.headers) assertJson(options.headers, 'headers');
    const route = this.router.route(name);
    const id = options.taskId ?? uuid();
    const queue = options.queue ?? route?.queue ?? defaults.queue ?? this.conf.taskDefaultQueue;
    const priority = options.priority ?? route?.priority ?? defaults.priority ?? null;
    let eta: Date | null = null;
    if (options.eta !== undefined) eta = toDate(options.eta, 'eta');
    else if (options.countdown !== undefined) eta = new Date(Date.now() + seconds(options.countdown, 'countdown') * 1000);
    let expires: Date | null = null;
    if (typeof options.expires === 'number') expires = new Date(Date.now() + seconds(options.expires, 'expires') * 1000);
    else if (options.expires !== undefined) expires = toDate(options.expires, 'expires');
    return this.prepareEncoded({
      task: name,
      id,
      args,
      kwargs,
      embed,
      queue,
      priority,
      eta,
      expires,
      retries: options.retries ?? 0,
      rootId: options.rootId ?? id,
      parentId: options.parentId ?? null,
      group: options.group ?? null,
      groupIndex: options.groupIndex ?? null,
      ignoreResult: options.ignoreResult ?? defaults.ignoreResult ?? this.conf.taskIgnoreResult,
      timelimit: [options.timeLimit ?? defaults.timeLimit ?? null, options.softTimeLimit ?? defaults.softTimeLimit ?? null],
      shadow: options.shadow ?? null,
      headers: options.headers,
    });
  }

  /**
   * Encode a message whose fields are already decided (prepareMessage's, or one derived by a worker from a received
   * message, e.g. a retry) as this producer, and check its size.
   * @internal
   */
  prepareEncoded(m: Omit<NewTaskMessage, 'origin'>): PreparedMessage {
    const raw = encodeTaskMessage({ ...m, origin: this.origin });
    // the limit is on what the caller sent (args, kwargs, canvas), not on its base64 envelope
    const payload = payloadBytes(raw);
    if (payload > this.conf.maxMessageBytes || Buffer.byteLength(raw) > envelopeLimit(this.conf.maxMessageBytes)) {
      throw new CeleriacError(ErrorCode.TooLarge,
        `message for ${m.task} carries ${payload} bytes of arguments, over maxMessageBytes (${this.conf.maxMessageBytes})`);
    }
    return { id: m.id, queue: m.queue, priority: m.priority ?? 0, raw };
  }

  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    if (this.brokerPromise) closing.push(this.brokerPromise.then((b) => b.close(), () => {}));
    if (this.backendPromise) closing.push(this.backendPromise.then((b) => b.close(), () => {}));
    this.brokerPromise = null;
    this.backendPromise = null;
    await Promise.all(closing);
  }
}
