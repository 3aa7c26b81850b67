/**
 * What a running task sees as `this`: its request, an AbortSignal, retry() and updateState().
 * Handlers written as `function (this: TaskContext, …)` get it typed; arrow functions simply ignore it.
 */
import type { TaskState } from '../protocol/index.ts';
import type { RetryOptions } from './options.ts';

export interface TaskRequest {
  id: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  headers: Record<string, unknown>;
  eta: Date | null;
  expires: Date | null;
  rootId: string | null;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  /** Where the message came from: queue, exchange, routing key, priority, and whether it was delivered before. */
  deliveryInfo: { queue: string; exchange: string; routingKey: string; priority: number; redelivered: boolean };
  /** The worker's node name (`celery@host`). */
  hostname: string;
}

export interface TaskContext {
  readonly name: string;
  readonly request: TaskRequest;
  /** Fires on soft time limit, revoke with terminate, and worker shutdown. */
  readonly signal: AbortSignal;
  /**
   * Ask for the task to run again later; use as `throw this.retry({ countdown: 5, exc: err })`.
   * Returns the error to throw: a retry signal, or — when retries are exhausted — `exc` (or MaxRetriesExceededError).
   */
  retry(options?: RetryOptions): Error;
  /** Store a custom state (e.g. PROGRESS) with metadata, readable through AsyncResult while the task runs. */
  updateState(update: { state: TaskState | string; meta?: unknown }): Promise<void>;
}
