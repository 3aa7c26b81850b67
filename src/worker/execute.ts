/**
 * Runs one task message to its end, as Celery's tracer does: STARTED (when tracked), the handler, then exactly one of
 * SUCCESS (chain/callbacks published first), RETRY (the new message published first), or FAILURE (errbacks published);
 * the result write and the ack go through the Settler, result first.
 */
import { performance } from 'node:perf_hooks';
import { CeleriacError, MaxRetriesExceededError, RetrySignal, ErrorCode } from '../common/errors.ts';
import { assertJson } from '../common/json.ts';
import { backoffSeconds } from '../common/backoff.ts';
import type { Logger } from '../common/logger.ts';
import {
  errorToException, formatTraceback, makeResultMeta, type ResultMeta, type TaskMessage, type TaskState,
} from '../protocol/index.ts';
import type { Broker, Delivery } from '../broker/broker.ts';
import type { ResultBackend } from '../backend/backend.ts';
import type { Celeriac } from '../app/app.ts';
import type { Task } from '../task/task.ts';
import type { TaskContext, TaskRequest } from '../task/context.ts';
import type { RetryOptions, TaskOptions } from '../task/options.ts';
import type { Settler } from './settler.ts';
import { failureFollowups, joinChord, pendingChainIds, successFollowups } from './followups.ts';

export interface ExecEnv {
  app: Celeriac;
  broker: Broker;
  backend: ResultBackend;
  settler: Settler;
  log: Logger;
  hostname: string;
  /** Told when a message was parked until `dueAt`, so the promotion sweep wakes in time. */
  parked(dueAt: number): void;
}

/** A task in progress, as the worker tracks it (for shutdown, inspect active, revoke with terminate). */
export class Running {
  private controller: AbortController | null = null;
  readonly startedAt = Date.now();
  /** Revoked with terminate: whatever the handler still returns is ignored (REVOKED is already stored). */
  terminated = false;
  constructor(readonly delivery: Delivery, readonly msg: TaskMessage) {}
  /** Created on first use: most tasks never look at their signal. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
  abort(reason: Error): void {
    this.controller ??= new AbortController();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}

/** Celery's TimeLimitExceeded / SoftTimeLimitExceeded, stored so Python callers can catch them by class. */
class TimeLimitExceeded extends CeleriacError {
  readonly excArgs: unknown[];
  constructor(seconds: number, soft: boolean) {
    super(ErrorCode.Timeout, `${soft ? 'soft ' : ''}time limit (${seconds}s) exceeded`);
    this.name = soft ? 'SoftTimeLimitExceeded' : 'TimeLimitExceeded';
    this.excArgs = [seconds];
  }
}

function short(value: unknown, limit = 1024): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? 'undefined';
  } catch {
    text = String(value);
  }
  return text.length > limit ? `${text.slice(0, limit)}...` : text;
}

function errRepr(err: unknown): string {
  const info = errorToException(err);
  return `${info.exc_type}(${info.exc_message.map((m) => JSON.stringify(m)).join(', ')})`;
}

/** Measured only when the bound from assertJson says it might be too big: one stringify, not one per result. */
function assertResultSize(value: unknown, bound: number, limit: number, taskName: string): void {
  if (bound <= limit) return;
  const size = Buffer.byteLength(JSON.stringify(value));
  if (size > limit) {
    throw new CeleriacError(ErrorCode.TooLarge, `result of ${taskName} is ${size} bytes, over maxResultBytes (${limit})`);
  }
}

function matches(err: unknown, matcher: TaskOptions['autoretryFor']): boolean {
  if (!matcher) return false;
  if (typeof matcher === 'function') return matcher(err);
  return matcher.some((cls) => err instanceof (cls as abstract new (...a: any[]) => unknown));
}

export function requestOf(msg: TaskMessage, delivery: Delivery, hostname: string): TaskRequest {
  return {
    id: msg.id,
    task: msg.task,
    args: msg.args,
    kwargs: msg.kwargs,
    retries: msg.retries,
    headers: msg.headers,
    eta: msg.eta,
    expires: msg.expires,
    rootId: msg.rootId,
    parentId: msg.parentId,
    group: msg.group,
    groupIndex: msg.groupIndex,
    deliveryInfo: {
      queue: delivery.queue, exchange: msg.exchange, routingKey: msg.routingKey, priority: msg.priority,
      redelivered: msg.redelivered,
    },
    hostname,
  };
}

/** `this` inside a handler. A class, not an object of closures: one is made per task, on the hot path. */
class Context implements TaskContext {
  private req: TaskRequest | null = null;
  constructor(private readonly env: ExecEnv, private readonly run: Running, private readonly task: Task) {}

  get name(): string {
    return this.task.name;
  }

  get request(): TaskRequest {
    this.req ??= requestOf(this.run.msg, this.run.delivery, this.env.hostname);
    return this.req;
  }

  get signal(): AbortSignal {
    return this.run.signal;
  }

  retry(o: RetryOptions = {}): Error {
    return retrySignal(this.task, this.run.msg, o);
  }

  async updateState({ state, meta }: { state: TaskState | string; meta?: unknown }): Promise<void> {
    const { msg } = this.run;
    await this.env.backend.store([{ taskId: msg.id, meta: makeResultMeta({
      taskId: msg.id, status: state as TaskState, result: meta ?? null, groupId: msg.group, parentId: msg.parentId,
    }) }]);
  }
}

export async function executeTask(env: ExecEnv, run: Running, task: Task, acksLate: boolean): Promise<void> {
  const { app, log } = env;
  const { msg, delivery } = run;
  const opts = task.options;
  const ignoreResult = msg.ignoreResult || opts.ignoreResult === true;
  const store = (meta: ResultMeta) => {
    if (!ignoreResult) env.settler.store({ taskId: msg.id, meta });
  };
  if (!acksLate) env.settler.ack(delivery.tag);
  if (opts.trackStarted ?? app.conf.taskTrackStarted) {
    await env.backend.store([{ taskId: msg.id, meta: makeResultMeta({
      taskId: msg.id, status: 'STARTED', result: { pid: process.pid, hostname: env.hostname },
      groupId: msg.group, parentId: msg.parentId,
    }) }]);
  }

  const ctx = new Context(env, run, task);
  const args = Object.keys(msg.kwargs).length > 0 ? [...msg.args, msg.kwargs] : msg.args;
  const t0 = performance.now();
  let value: unknown;
  try {
    value = await withTimeLimits(run, opts, msg, () => task.handler.apply(ctx, args as any[]));
    if (value === undefined) value = null;
    assertResultSize(value, assertJson(value, `result of ${task.name}`), app.conf.maxResultBytes, task.name);
  } catch (err) {
    if (run.terminated) {
      if (acksLate) env.settler.ack(delivery.tag);
      return;
    }
    const retry = err instanceof RetrySignal ? err : autoRetry(task, msg, err);
    if (retry) {
      await publishRetry(env, run, task, retry);
      store(makeResultMeta({
        taskId: msg.id, status: 'RETRY', result: errorToException(retry.exc ?? retry), traceback: formatTraceback(retry.exc),
        groupId: msg.group, parentId: msg.retries > 0 ? msg.id : msg.parentId,
      }));
      log.info(`Task ${task.name}[${msg.id}] retry: Retry in ${retry.countdown}s: ${retry.exc ? errRepr(retry.exc) : 'Retry'}`);
    } else {
      await fail(env, run, task.name, err, ignoreResult);
    }
    if (acksLate) env.settler.ack(delivery.tag);
    return;
  }
  if (run.terminated) {
    if (acksLate) env.settler.ack(delivery.tag);
    return;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const { messages, children } = successFollowups(app, msg, value);
  if (messages.length > 0) await env.broker.publish(messages);
  const meta = makeResultMeta({ taskId: msg.id, status: 'SUCCESS', result: value, children, groupId: msg.group,
    parentId: msg.parentId });
  if (msg.embed.chord && msg.group) {
    await env.backend.store([{ taskId: msg.id, meta }]);
    await joinChord(app, env.backend, msg, 'SUCCESS', value);
  } else {
    store(meta);
  }
  if (log.enabled('info')) log.info(`Task ${task.name}[${msg.id}] succeeded in ${elapsed.toFixed(6)}s: ${short(value)}`);
  if (acksLate) env.settler.ack(delivery.tag);
}

/** FAILURE: stored with the exception and stack, errbacks published, pending chain links failed as well. */
export async function fail(env: ExecEnv, run: Running, taskName: string, err: unknown, ignoreResult = false): Promise<void> {
  const { msg } = run;
  const exc = errorToException(err);
  const traceback = formatTraceback(err);
  env.log.error(`Task ${taskName}[${msg.id}] raised unexpected: ${errRepr(err)}${traceback ? `\n${traceback}` : ''}`);
  const errbacks = failureFollowups(env.app, msg);
  if (errbacks.length > 0) await env.broker.publish(errbacks);
  const meta = makeResultMeta({ taskId: msg.id, status: 'FAILURE', result: exc, traceback, groupId: msg.group,
    parentId: msg.parentId });
  if (msg.embed.chord && msg.group) {
    await env.backend.store([{ taskId: msg.id, meta }]);
    await joinChord(env.app, env.backend, msg, 'FAILURE', exc);
    return;
  }
  if (!ignoreResult) env.settler.store({ taskId: msg.id, meta });
  for (const id of pendingChainIds(msg)) {
    env.settler.store({ taskId: id, meta: makeResultMeta({ taskId: id, status: 'FAILURE', result: exc, traceback }) });
  }
}

function retrySignal(task: Task, msg: TaskMessage, o: RetryOptions): Error {
  const max = o.maxRetries !== undefined ? o.maxRetries : (task.options.maxRetries ?? 3);
  if (max !== null && msg.retries >= max) {
    if (o.exc instanceof Error) return o.exc;
    if (o.exc !== undefined) return new Error(String(o.exc));
    return new MaxRetriesExceededError(task.name, msg.id, max);
  }
  let countdown = o.countdown ?? task.options.defaultRetryDelay ?? 180;
  if (o.eta !== undefined) countdown = Math.max(0, (new Date(o.eta).getTime() - Date.now()) / 1000);
  return new RetrySignal(countdown, o.exc);
}

function autoRetry(task: Task, msg: TaskMessage, err: unknown): RetrySignal | null {
  const o = task.options;
  if (!matches(err, o.autoretryFor)) return null;
  const max = o.maxRetries === undefined ? 3 : o.maxRetries;
  if (max !== null && msg.retries >= max) return null;
  let countdown = o.defaultRetryDelay ?? 180;
  if (o.retryBackoff) {
    countdown = backoffSeconds({
      factor: o.retryBackoff === true ? 1 : Number(o.retryBackoff),
      retries: msg.retries,
      maximum: o.retryBackoffMax ?? 600,
      jitter: o.retryJitter ?? true,
    });
  }
  return new RetrySignal(countdown, err);
}

/** The retry is a new message with the same id, one more retry, and an ETA (docs/wire-format.md §7.5). */
async function publishRetry(env: ExecEnv, run: Running, task: Task, retry: RetrySignal): Promise<void> {
  const { msg, delivery } = run;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg.headers)) {
    if (!STANDARD_HEADERS.has(k)) extra[k] = v;
  }
  const next = env.app.prepareMessage(msg.task, msg.args, msg.kwargs, {
    taskId: msg.id,
    queue: delivery.queue,
    priority: msg.priority,
    countdown: retry.countdown,
    expires: msg.expires ?? undefined,
    retries: msg.retries + 1,
    parentId: msg.id,
    rootId: msg.rootId ?? msg.id,
    group: msg.group,
    groupIndex: msg.groupIndex,
    ignoreResult: msg.ignoreResult,
    shadow: msg.shadow ?? undefined,
    timeLimit: msg.timelimit[0] ?? undefined,
    softTimeLimit: msg.timelimit[1] ?? undefined,
    headers: extra,
  }, task.options, msg.embed);
  // parked at once: the retry waits in the broker, not in a worker's memory
  const dueAt = Date.now() + retry.countdown * 1000;
  await env.broker.publish([{ ...next, dueAt }]);
  env.parked(dueAt);
}

const STANDARD_HEADERS = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit', 'root_id',
  'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'redelivered',
]);

/** Soft limit: the task's signal fires. Hard limit: the task has failed (an async task cannot be killed). */
function withTimeLimits(run: Running, opts: TaskOptions, msg: TaskMessage, call: () => unknown): Promise<unknown> | unknown {
  const hard = msg.timelimit[0] ?? opts.timeLimit;
  const soft = msg.timelimit[1] ?? opts.softTimeLimit;
  if (!hard && !soft) return call();
  const timers: NodeJS.Timeout[] = [];
  return new Promise((resolve, reject) => {
    if (soft) timers.push(setTimeout(() => run.abort(new TimeLimitExceeded(soft, true)), soft * 1000));
    if (hard) {
      timers.push(setTimeout(() => {
        const err = new TimeLimitExceeded(hard, false);
        run.abort(err);
        reject(err);
      }, hard * 1000));
    }
    Promise.resolve().then(call).then(resolve, reject);
  }).finally(() => timers.forEach(clearTimeout));
}
