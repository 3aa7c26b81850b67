/**
 * Runs one task message to its end, as Celery's tracer does: STARTED (when tracked), the handler, then exactly one of
 * SUCCESS (chain/callbacks published first), RETRY (the new message published first), or FAILURE (errbacks published);
 * records go through Records (records.ts), and the ack is written after them, once.
 */
import { performance } from 'node:perf_hooks';
import { CeleriacError, MaxRetriesExceededError, RetrySignal, ErrorCode } from '../common/errors.ts';
import { assertJson } from '../common/json.ts';
import { backoffSeconds } from '../common/backoff.ts';
import type { Logger } from '../common/logger.ts';
import { errorToException, formatTraceback, retryMessage, type TaskMessage, type TaskState } from '../protocol/index.ts';
import type { Broker, Delivery } from '../broker/broker.ts';
import type { ResultBackend } from '../backend/backend.ts';
import type { Celeriac } from '../app/app.ts';
import type { Task } from '../task/task.ts';
import type { TaskContext, TaskRequest } from '../task/context.ts';
import type { ErrorMatcher, ResolvedTaskOptions, RetryOptions } from '../task/options.ts';
import type { Settler } from './settler.ts';
import { taskRecord, type Records } from './records.ts';
import { joinChord, pendingChainIds, runErrbacks, successFollowups } from './followups.ts';
import { publishPlan } from '../task/canvas.ts';
import { stringifyJson } from '../common/exact-json.ts';
import type { TaskEvents } from './events.ts';

/** What every part of a started worker works with. */
export interface WorkerEnv {
  app: Celeriac;
  broker: Broker;
  backend: ResultBackend;
  settler: Settler;
  records: Records;
  log: Logger;
  /** Task events (`worker -E`, events.ts); absent when they are off. */
  events?: TaskEvents;
}

export interface ExecEnv extends WorkerEnv {
  hostname: string;
  /** Told when a message was parked until `dueAt`, so the promotion sweep wakes in time. */
  parked(dueAt: number): void;
  /** Time limits set at run time for a task (remote control's time_limit), in seconds; null for none. */
  timeLimitsOf?(taskName: string): { soft: number | null; hard: number | null } | undefined;
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
  const size = Buffer.byteLength(stringifyJson(value) ?? 'null');
  if (size > limit) {
    throw new CeleriacError(ErrorCode.TooLarge, `result of ${taskName} is ${size} bytes, over maxResultBytes (${limit})`);
  }
}

function matches(err: unknown, matcher: ErrorMatcher): boolean {
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
    await this.env.records.now(taskRecord(this.run.msg, state as TaskState, meta ?? null));
  }
}

/**
 * Run one message's task to its end. Every record goes through `env.records`; the late ack is written once, after
 * the run's last record was handed over (the Settler writes records before acks). A failure of our own (a retry that
 * cannot be published, a chord that cannot be joined) is stored as the task's FAILURE and never escapes.
 */
export async function executeTask(env: ExecEnv, run: Running, task: Task): Promise<void> {
  const { acksLate } = task.resolved;
  if (!acksLate) env.settler.ack(run.delivery.tag, run.msg.id);
  env.events?.started(run.msg);
  try {
    await trace(env, run, task);
  } catch (err) {
    try {
      await fail(env, run, task.name, err);
    } catch (storeErr) {
      env.log.error(`Cannot store FAILURE of ${task.name}[${run.msg.id}]: ${(storeErr as Error).message}`);
    }
  }
  if (acksLate) env.settler.ack(run.delivery.tag, run.msg.id);
}

function isChordPart(msg: TaskMessage): boolean {
  return !!msg.embed.chord && !!msg.group;
}

/** STARTED (when tracked), the handler, then exactly one of SUCCESS, RETRY or FAILURE with what each publishes. */
async function trace(env: ExecEnv, run: Running, task: Task): Promise<void> {
  const { app, log } = env;
  const { msg } = run;
  const opts = task.resolved;
  const keep = !(msg.ignoreResult || opts.ignoreResult);
  if (opts.trackStarted) {
    await env.records.now(taskRecord(msg, 'STARTED', { pid: process.pid, hostname: env.hostname }));
  }
  const ctx = new Context(env, run, task);
  const args = Object.keys(msg.kwargs).length > 0 ? [...msg.args, msg.kwargs] : msg.args;
  const t0 = performance.now();
  let value: unknown;
  try {
    value = await withTimeLimits(run, opts, msg, env.timeLimitsOf?.(task.name), () => task.handler.apply(ctx, args as any[]));
    if (value === undefined) value = null;
    assertResultSize(value, assertJson(value, `result of ${task.name}`), app.conf.maxResultBytes, task.name);
  } catch (err) {
    if (run.terminated) return;
    const retry = err instanceof RetrySignal ? err : autoRetry(task, msg, err);
    if (!retry) {
      await fail(env, run, task.name, err, !keep);
      return;
    }
    await publishRetry(env, run, retry);
    if (keep) {
      env.records.batched(taskRecord(msg, 'RETRY', errorToException(retry.exc ?? retry), {
        traceback: formatTraceback(retry.exc), parentId: msg.retries > 0 ? msg.id : msg.parentId,
      }));
    }
    env.events?.retried(msg, retry.exc);
    log.info(`Task ${task.name}[${msg.id}] retry: Retry in ${retry.countdown}s: ${retry.exc ? errRepr(retry.exc) : 'Retry'}`);
    return;
  }
  if (run.terminated) return;
  const elapsed = (performance.now() - t0) / 1000;
  const { plan, children } = successFollowups(app, msg, value);
  await publishPlan(plan, () => Promise.resolve(env.broker), () => Promise.resolve(env.backend));
  const record = taskRecord(msg, 'SUCCESS', value, { children });
  if (isChordPart(msg)) {
    await env.records.now(record);
    await joinChord(app, env.backend, msg, 'SUCCESS', value, log);
  } else if (keep) {
    env.records.batched(record);
  }
  env.events?.succeeded(msg, value, elapsed);
  if (log.enabled('info')) log.info(`Task ${task.name}[${msg.id}] succeeded in ${elapsed.toFixed(6)}s: ${short(value)}`);
}

/** FAILURE: stored with the exception and stack, errbacks published, pending chain links failed as well. */
async function fail(env: ExecEnv, run: Running, taskName: string, err: unknown, ignoreResult = false): Promise<void> {
  const { msg } = run;
  const exc = errorToException(err);
  const traceback = formatTraceback(err);
  env.log.error(`Task ${taskName}[${msg.id}] raised unexpected: ${errRepr(err)}${traceback ? `\n${traceback}` : ''}`);
  env.events?.failed(msg, err, traceback);
  await runErrbacks(env.app, msg, err instanceof Error ? err : new Error(String(err)), traceback, env.log,
    () => Promise.resolve(env.broker), () => Promise.resolve(env.backend));
  const record = taskRecord(msg, 'FAILURE', exc, { traceback });
  if (isChordPart(msg)) {
    await env.records.now(record);
    await joinChord(env.app, env.backend, msg, 'FAILURE', exc, env.log);
    return;
  }
  if (!ignoreResult) env.records.batched(record);
  for (const id of pendingChainIds(msg)) {
    env.records.batched(taskRecord({ id }, 'FAILURE', exc, { traceback }));
  }
}

function retrySignal(task: Task, msg: TaskMessage, o: RetryOptions): Error {
  const max = o.maxRetries !== undefined ? o.maxRetries : task.resolved.maxRetries;
  if (max !== null && msg.retries >= max) {
    if (o.exc instanceof Error) return o.exc;
    if (o.exc !== undefined) return new Error(String(o.exc));
    return new MaxRetriesExceededError(task.name, msg.id, max);
  }
  let countdown = o.countdown ?? task.resolved.defaultRetryDelay;
  if (o.eta !== undefined) countdown = Math.max(0, (new Date(o.eta).getTime() - Date.now()) / 1000);
  return new RetrySignal(countdown, o.exc);
}

function autoRetry(task: Task, msg: TaskMessage, err: unknown): RetrySignal | null {
  const o = task.resolved;
  if (!o.autoretryFor || !matches(err, o.autoretryFor)) return null;
  if (o.maxRetries !== null && msg.retries >= o.maxRetries) return null;
  const countdown = o.retryBackoff === null ? o.defaultRetryDelay : backoffSeconds({
    factor: o.retryBackoff, retries: msg.retries, maximum: o.retryBackoffMax, jitter: o.retryJitter,
  });
  return new RetrySignal(countdown, err);
}

/** The retry is the received message derived once more (protocol/derive.ts), parked at once until it is due. */
async function publishRetry(env: ExecEnv, run: Running, retry: RetrySignal): Promise<void> {
  const dueAt = Date.now() + retry.countdown * 1000;
  const next = env.app.prepareEncoded(retryMessage(run.msg, { eta: new Date(dueAt), queue: run.delivery.queue }));
  // parked at once: the retry waits in the broker, not in a worker's memory
  await env.broker.publish([{ ...next, dueAt }]);
  env.parked(dueAt);
}

/**
 * Soft limit: the task's signal fires. Hard limit: the task has failed (an async task cannot be killed). The
 * message's own limits win, then those set at run time, then the task's (as Celery orders them).
 */
function withTimeLimits(run: Running, opts: ResolvedTaskOptions, msg: TaskMessage,
  set: { soft: number | null; hard: number | null } | undefined, call: () => unknown): Promise<unknown> | unknown {
  const hard = msg.timelimit[0] ?? (set ? set.hard : opts.timeLimit);
  const soft = msg.timelimit[1] ?? (set ? set.soft : opts.softTimeLimit);
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
