/**
 * Task options (set when a task is defined) and apply options (set per call), Celery's names in camelCase.
 * Defaults differ from Celery's where Celery's are unsafe: see docs/defaults.md.
 * Both are checked where they enter from users: an unknown name or a bad value is E_BAD_OPTION (docs/errors.md).
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { closest } from '../common/closest.ts';
import { rateInterval } from './rate.ts';

export type ErrorMatcher = Array<abstract new (...args: any[]) => unknown> | ((err: unknown) => boolean);

export interface TaskOptions {
  /** Retries before a failure is final (Celery: 3). null retries for ever. */
  maxRetries?: number | null;
  /** Seconds before a retry when `retry()` names no countdown (Celery: 180). */
  defaultRetryDelay?: number;
  /** Errors that retry the task by themselves (Celery's autoretry_for): classes, or a predicate. */
  autoretryFor?: ErrorMatcher;
  /** Exponential backoff for automatic retries: true is a factor of 1 s, a number is the factor in seconds. */
  retryBackoff?: boolean | number;
  /** Upper bound of a backoff delay in seconds (Celery: 600). */
  retryBackoffMax?: number;
  /** Spread backoff delays uniformly over [0, delay] (Celery: true). */
  retryJitter?: boolean;
  /** Acknowledge after the task finished (at-least-once). Defaults to the app's `taskAcksLate` (true). */
  acksLate?: boolean;
  ignoreResult?: boolean;
  /** Store STARTED when the task begins (Celery's track_started). */
  trackStarted?: boolean;
  queue?: string;
  priority?: number;
  /** Seconds: the task's AbortSignal fires, then the task has failed with TimeLimitExceeded. */
  timeLimit?: number;
  /** Seconds: the task's AbortSignal fires so it can stop by itself (SoftTimeLimitExceeded). */
  softTimeLimit?: number;
  /**
   * At most this many starts, across every worker on the broker (Celery's syntax: '10/s', '100/m', '1000/h', or a
   * number per second). A task waiting for its turn holds no concurrency slot.
   */
  rateLimit?: string | number | null;
}

/**
 * A task's options with every default filled in, once, when the task is defined (the app resolves them: some
 * defaults are app settings). The worker reads only these, so a default lives in one place.
 */
export interface ResolvedTaskOptions {
  maxRetries: number | null;
  defaultRetryDelay: number;
  autoretryFor: ErrorMatcher | null;
  /** The backoff factor in seconds, or null for no backoff. */
  retryBackoff: number | null;
  retryBackoffMax: number;
  retryJitter: boolean;
  acksLate: boolean;
  ignoreResult: boolean;
  trackStarted: boolean;
  timeLimit: number | null;
  softTimeLimit: number | null;
  /** Milliseconds between two starts of this task on the whole broker, or null for no limit. */
  rateLimitMs: number | null;
}

/** Celery's defaults for retries. */
export const RETRY_DEFAULTS = { maxRetries: 3, defaultRetryDelay: 180, retryBackoffMax: 600, retryJitter: true } as const;

export interface ApplyOptions {
  taskId?: string;
  queue?: string;
  priority?: number;
  /** Seconds from now. */
  countdown?: number;
  eta?: Date | string;
  /** Seconds from now, or an absolute time. */
  expires?: number | Date | string;
  headers?: Record<string, unknown>;
  ignoreResult?: boolean;
  shadow?: string;
  timeLimit?: number;
  softTimeLimit?: number;
  /** Set by workers for tasks they publish (retries, chains, callbacks). */
  parentId?: string | null;
  rootId?: string | null;
  retries?: number;
  group?: string | null;
  groupIndex?: number | null;
}

/** A check for one option's value: the expectation to quote when the value fails it. */
type Check = readonly [ok: (v: unknown) => boolean, expected: string];

const isString: Check[0] = (v) => typeof v === 'string';
const nonEmptyString: Check = [(v) => typeof v === 'string' && v.length > 0, 'a non-empty string'];
const stringOrNull: Check = [(v) => v === null || isString(v), 'a string or null'];
const bool: Check = [(v) => typeof v === 'boolean', 'true or false'];
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const positive: Check = [(v) => finite(v) && v > 0, 'a positive number of seconds'];
const nonNegative: Check = [(v) => finite(v) && v >= 0, 'a number of seconds >= 0'];
const count: Check = [(v) => Number.isInteger(v) && (v as number) >= 0, 'a whole number >= 0'];
/** Celery's range; the brokers keep kombu's four bands (0-2, 3-5, 6-8, 9 and above), so 10 counts as 9. */
const priority: Check = [(v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255,
  'a whole number from 0 to 255 (0 is served first; 9 and above share the last band)'];
const isErrorClass = (v: Function): boolean => v === Error || v.prototype instanceof Error;
const validDate = (v: unknown): boolean =>
  (v instanceof Date || isString(v)) && !Number.isNaN((v instanceof Date ? v : new Date(v as string)).getTime());

const APPLY_CHECKS: Readonly<Record<keyof ApplyOptions, Check>> = {
  taskId: nonEmptyString,
  queue: nonEmptyString,
  priority,
  countdown: [finite, 'a finite number of seconds'],
  eta: [validDate, 'a valid Date or date string'],
  expires: [(v) => finite(v) || validDate(v), 'a finite number of seconds, or a valid Date or date string'],
  headers: [(v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'an object'],
  ignoreResult: bool,
  shadow: [isString, 'a string'],
  timeLimit: positive,
  softTimeLimit: positive,
  parentId: stringOrNull,
  rootId: stringOrNull,
  retries: count,
  group: stringOrNull,
  groupIndex: [(v) => v === null || count[0](v), 'a whole number >= 0 or null'],
};

const TASK_CHECKS: Readonly<Record<keyof TaskOptions, Check>> = {
  maxRetries: [(v) => v === null || count[0](v), 'a whole number >= 0, or null (retry for ever)'],
  defaultRetryDelay: nonNegative,
  autoretryFor: [(v) => (typeof v === 'function' && !isErrorClass(v)) || (Array.isArray(v) && v.every((c) => typeof c === 'function')),
    'an array of error classes ([MyError], not MyError alone), or a predicate (err) => boolean'],
  retryBackoff: [(v) => typeof v === 'boolean' || (finite(v) && v > 0), 'true, false or a positive number of seconds'],
  retryBackoffMax: nonNegative,
  retryJitter: bool,
  acksLate: bool,
  ignoreResult: bool,
  trackStarted: bool,
  queue: nonEmptyString,
  priority,
  timeLimit: positive,
  softTimeLimit: positive,
  rateLimit: [(v) => {
    try {
      rateInterval(v);
      return true;
    } catch {
      return false;
    }
  }, "a rate such as '10/s', '100/m', '1000/h', a number per second, or null"],
};

/** Every apply option's name: a second argument to `applyAsync` made only of these is refused as ambiguous. */
export const APPLY_OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(APPLY_CHECKS));
export const TASK_OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(TASK_CHECKS));

function show(v: unknown): string {
  if (typeof v === 'function') return v.name ? `the function ${v.name}` : 'a function';
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'symbol') return String(v);
  if (v instanceof Date) return `Date(${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function check(options: unknown, where: string, kind: string, checks: Readonly<Record<string, Check>>): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new CeleriacError(ErrorCode.BadOption, `${where}: ${kind}s must be an object, got ${show(options)}`);
  }
  for (const key in options) {
    const c = Object.hasOwn(checks, key) ? checks[key] : undefined;
    if (c === undefined) {
      const known = Object.keys(checks);
      const hint = closest(key, known);
      throw new CeleriacError(ErrorCode.BadOption, `${where}: unknown ${kind} "${key}"` +
        `${hint ? ` (did you mean "${hint}"?)` : ''}; known ${kind}s: ${known.join(', ')}`);
    }
    const v = (options as Record<string, unknown>)[key];
    if (v !== undefined && !c[0](v)) {
      throw new CeleriacError(ErrorCode.BadOption, `${where}: ${kind} ${key} must be ${c[1]}, got ${show(v)}`);
    }
  }
}

/**
 * Check apply options from a caller: an unknown name (with a "did you mean") or a value of the wrong kind is an
 * E_BAD_OPTION error, thrown before anything is published. `undefined` values count as absent.
 */
export function checkApplyOptions(options: unknown, where: string): asserts options is ApplyOptions {
  check(options, where, 'option', APPLY_CHECKS);
}

/** Check the options of a task definition (`app.task(name, handler, options)`), as `checkApplyOptions` does. */
export function checkTaskOptions(options: unknown, where: string): asserts options is TaskOptions {
  check(options, where, 'task option', TASK_CHECKS);
}

/**
 * `applyAsync(args, kwargs)` / `sendTask(name, args, kwargs)` with no options argument, where every key of kwargs is
 * an apply option's name: almost always options in the wrong place (the two-argument form celeriac once accepted).
 * Refused with E_AMBIGUOUS_OPTIONS; an explicit options argument (`{}`) says the keys really are keyword arguments.
 */
export function refuseAmbiguousKwargs(kwargs: unknown, where: string, head: string): void {
  if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) return;
  let any = false;
  for (const key in kwargs) {
    if (!APPLY_OPTION_NAMES.has(key)) return;
    any = true;
  }
  if (!any) return;
  const o = show(kwargs);
  throw new CeleriacError(ErrorCode.AmbiguousOptions,
    `${where}: ${head}, ${o}) has only option names in kwargs, and options are the next argument: ` +
    `write ${head}, {}, ${o}). For a task that really takes keyword arguments with these names, pass options ` +
    `explicitly: ${head}, ${o}, {}).`);
}

export interface RetryOptions {
  /** Seconds until the retry runs; default: the task's `defaultRetryDelay`. */
  countdown?: number;
  eta?: Date | string;
  /** The cause, stored with the RETRY state and rethrown when retries are exhausted. */
  exc?: unknown;
  maxRetries?: number | null;
}
