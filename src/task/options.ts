/**
 * Task options (set when a task is defined) and apply options (set per call), Celery's names in camelCase.
 * Defaults differ from Celery's where Celery's are unsafe: see docs/defaults.md.
 */

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
}

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

export const APPLY_OPTION_NAMES: ReadonlySet<string> = new Set([
  'taskId', 'queue', 'priority', 'countdown', 'eta', 'expires', 'headers', 'ignoreResult', 'shadow', 'timeLimit',
  'softTimeLimit', 'parentId', 'rootId', 'retries', 'group', 'groupIndex',
]);

export interface RetryOptions {
  /** Seconds until the retry runs; default: the task's `defaultRetryDelay`. */
  countdown?: number;
  eta?: Date | string;
  /** The cause, stored with the RETRY state and rethrown when retries are exhausted. */
  exc?: unknown;
  maxRetries?: number | null;
}
