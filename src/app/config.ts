/**
 * App configuration: Celery's setting names in camelCase, resolved once with safe defaults.
 * CELERIAC_BROKER_URL and CELERIAC_RESULT_BACKEND override the code (twelve-factor deployments).
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { closest } from '../common/closest.ts';
import type { BeatEntry } from './beat-schedule.ts';
import { RETRY_DEFAULTS, type ResolvedTaskOptions, type TaskOptions } from '../task/options.ts';
import { rateInterval } from '../task/rate.ts';
import { DEAD_LETTERS_KEPT } from '../stores/limits.ts';

export interface Route {
  queue?: string;
  priority?: number;
}

export interface CeleriacConfig {
  broker?: string;
  backend?: string;
  /** Task modules the worker loads, relative to the app module (Celery's `include`). */
  include?: string[];
  /** Task name (or glob such as `shop.*`) -> queue and priority. */
  taskRoutes?: Record<string, Route | string>;
  taskDefaultQueue?: string;
  /** Acknowledge after the task finished (default true: at-least-once). */
  taskAcksLate?: boolean;
  taskIgnoreResult?: boolean;
  taskTrackStarted?: boolean;
  /** Messages reserved per unit of concurrency (Celery: 4). */
  workerPrefetchMultiplier?: number;
  workerConcurrency?: number;
  /**
   * A message recovered from holders that stopped renewing their lease more often than this (a task that blocks the
   * event loop longer than the lease, a worker that keeps crashing on it) goes to the dead letters, with a FAILURE
   * record, instead of running again (default 10). A task that already succeeded is never run again anyway.
   */
  workerMaxRecoveries?: number;
  /** Workers publish task events (Celery's worker_send_task_events, `worker -E`); default false. */
  workerSendTaskEvents?: boolean;
  /** Producers publish a `task-sent` event for every task they send (Celery's task_send_sent_event); default false. */
  taskSendSentEvent?: boolean;
  /** Seconds a result is kept (default 86400); null keeps it for ever. */
  resultExpires?: number | null;
  brokerTransportOptions?: {
    /** Seconds before a reservation nobody renews is given to another worker (kombu: 3600). */
    visibilityTimeout?: number;
    /** Seconds a dead celeriac worker's reservations stay locked before recovery (default 10). */
    leaseTimeout?: number;
    /** List that keeps messages no worker can run (default `celeriac.deadletter`). */
    deadLetterQueue?: string;
    /** Dead letters the list keeps, newest first (default 10,000); older ones are dropped. */
    deadLetterLimit?: number;
  };
  /** Largest accepted message, in bytes (default 10 MiB); bigger ones are dead-lettered. */
  maxMessageBytes?: number;
  /** Largest result a task may return, in bytes of JSON (default 10 MiB); a bigger one is stored as FAILURE. */
  maxResultBytes?: number;
  /**
   * IANA time zone for crontab schedules (naive ETAs are read as UTC), e.g. `Asia/Shanghai`. Default as in Celery: UTC, or the
   * machine's zone when `enableUtc` is false.
   */
  timezone?: string;
  enableUtc?: boolean;
  /** Periodic tasks for `celeriac beat` / `worker -B`: entry name -> { task, schedule, args, kwargs, options }. */
  beatSchedule?: Record<string, BeatEntry>;
}

export interface ResolvedConfig {
  broker: string;
  backend: string;
  include: string[];
  taskRoutes: Record<string, Route>;
  taskDefaultQueue: string;
  taskAcksLate: boolean;
  taskIgnoreResult: boolean;
  taskTrackStarted: boolean;
  workerPrefetchMultiplier: number;
  workerConcurrency: number;
  workerMaxRecoveries: number;
  workerSendTaskEvents: boolean;
  taskSendSentEvent: boolean;
  resultExpires: number | null;
  visibilityTimeout: number;
  leaseTimeout: number;
  deadLetterQueue: string;
  deadLetterLimit: number;
  maxMessageBytes: number;
  maxResultBytes: number;
  timezone: string;
  enableUtc: boolean;
  beatSchedule: Record<string, BeatEntry>;
}

/** The embedded default: one SQLite file for queues, results and beat state, created on first use. */
export const DEFAULT_BROKER_URL = 'sqlite://.celeriac/celeriac.db';

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0)) {
    throw new CeleriacError(ErrorCode.BadOption, `${name} must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Celery's `app.timezone`: the configured zone, else UTC, else (enableUtc false) the machine's zone; checked. */
function resolveTimezone(timezone: string | undefined, enableUtc: boolean): string {
  if (timezone === undefined || timezone === '') {
    return enableUtc ? 'UTC' : Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  }
  try {
    if (typeof timezone === 'string') {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
      return timezone;
    }
  } catch {
    // not a zone Intl knows: the coded error below, with the closest name
  }
  {
    const hint = typeof timezone === 'string' ? closest(timezone, Intl.supportedValuesOf('timeZone')) : null;
    throw new CeleriacError(ErrorCode.BadOption, `timezone ${JSON.stringify(timezone)} is not an IANA time zone name` +
      (hint ? ` (did you mean "${hint}"?)` : ' (e.g. "Asia/Shanghai", "Europe/Berlin", "UTC")'));
  }
}

/** A task's options with the app's settings and Celery's retry defaults filled in (resolved once per task). */
export function resolveTaskOptions(o: TaskOptions, conf: ResolvedConfig): ResolvedTaskOptions {
  return {
    maxRetries: o.maxRetries === undefined ? RETRY_DEFAULTS.maxRetries : o.maxRetries,
    defaultRetryDelay: o.defaultRetryDelay ?? RETRY_DEFAULTS.defaultRetryDelay,
    autoretryFor: o.autoretryFor ?? null,
    retryBackoff: o.retryBackoff === undefined || o.retryBackoff === false ? null
      : o.retryBackoff === true ? 1 : Number(o.retryBackoff),
    retryBackoffMax: o.retryBackoffMax ?? RETRY_DEFAULTS.retryBackoffMax,
    retryJitter: o.retryJitter ?? RETRY_DEFAULTS.retryJitter,
    acksLate: o.acksLate ?? conf.taskAcksLate,
    ignoreResult: o.ignoreResult ?? conf.taskIgnoreResult,
    trackStarted: o.trackStarted ?? conf.taskTrackStarted,
    timeLimit: o.timeLimit ?? null,
    softTimeLimit: o.softTimeLimit ?? null,
    rateLimitMs: rateInterval(o.rateLimit),
  };
}

export function resolveConfig(c: CeleriacConfig, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const broker = env.CELERIAC_BROKER_URL || c.broker || DEFAULT_BROKER_URL;
  const backend = env.CELERIAC_RESULT_BACKEND || c.backend || broker;
  const routes: Record<string, Route> = {};
  for (const [k, v] of Object.entries(c.taskRoutes ?? {})) routes[k] = typeof v === 'string' ? { queue: v } : v;
  const t = c.brokerTransportOptions ?? {};
  return {
    broker,
    backend,
    include: c.include ?? [],
    taskRoutes: routes,
    taskDefaultQueue: c.taskDefaultQueue ?? 'celery',
    taskAcksLate: c.taskAcksLate ?? true,
    taskIgnoreResult: c.taskIgnoreResult ?? false,
    taskTrackStarted: c.taskTrackStarted ?? false,
    workerPrefetchMultiplier: positive('workerPrefetchMultiplier', c.workerPrefetchMultiplier, 4),
    workerConcurrency: positive('workerConcurrency', c.workerConcurrency, 100),
    workerMaxRecoveries: positive('workerMaxRecoveries', c.workerMaxRecoveries, 10),
    workerSendTaskEvents: c.workerSendTaskEvents ?? false,
    taskSendSentEvent: c.taskSendSentEvent ?? false,
    resultExpires: c.resultExpires === undefined ? 86400 : c.resultExpires,
    visibilityTimeout: positive('visibilityTimeout', t.visibilityTimeout, 3600),
    leaseTimeout: positive('leaseTimeout', t.leaseTimeout, 10),
    deadLetterQueue: t.deadLetterQueue ?? 'celeriac.deadletter',
    deadLetterLimit: positive('deadLetterLimit', t.deadLetterLimit, DEAD_LETTERS_KEPT),
    maxMessageBytes: positive('maxMessageBytes', c.maxMessageBytes, 10 * 1024 * 1024),
    maxResultBytes: positive('maxResultBytes', c.maxResultBytes, 10 * 1024 * 1024),
    timezone: resolveTimezone(c.timezone, c.enableUtc ?? true),
    enableUtc: c.enableUtc ?? true,
    beatSchedule: c.beatSchedule ?? {},
  };
}
