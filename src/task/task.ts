/**
 * A task definition: a name (the same string on both sides of the wire), a handler typed by its parameters, and
 * options. Calling it publishes a message; running it is the worker's business.
 */
import type { AsyncResult, ResultSource } from './async-result.ts';
import type { TaskContext } from './context.ts';
import { APPLY_OPTION_NAMES, type ApplyOptions, type TaskOptions } from './options.ts';

export type TaskHandler<A extends unknown[] = any[], R = unknown> = (this: TaskContext, ...args: A) => R;

/** One call in a batch: positional arguments, and optionally keyword arguments and apply options. */
export interface Call<A extends unknown[]> {
  args: A;
  kwargs?: Record<string, unknown>;
  options?: ApplyOptions;
}

/** What a task needs from its app to be called. */
export interface TaskProducer extends ResultSource {
  applyTask(name: string, args: unknown[], kwargs: Record<string, unknown>, options: ApplyOptions,
    defaults?: TaskOptions): Promise<AsyncResult<unknown>>;
  applyMany(name: string, calls: Call<unknown[]>[], defaults?: TaskOptions): Promise<AsyncResult<unknown>[]>;
}

function looksLikeOptions(value: object): boolean {
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => APPLY_OPTION_NAMES.has(k));
}

export class Task<A extends unknown[] = any[], R = unknown> {
  constructor(
    readonly name: string,
    readonly handler: TaskHandler<A, unknown>,
    readonly options: Readonly<TaskOptions>,
    private readonly producer: TaskProducer,
  ) {}

  /** Send the task with positional arguments (Celery's `delay`). Resolves once the broker has stored the message. */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /**
   * Send the task with arguments, keyword arguments and options (Celery's `apply_async`).
   * `applyAsync(args, options)` is accepted too when the second object holds only option names.
   */
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  applyAsync(args: A, options: ApplyOptions): Promise<AsyncResult<R>>;
  applyAsync(args?: A, kwargsOrOptions?: Record<string, unknown> | ApplyOptions, options?: ApplyOptions): Promise<AsyncResult<R>> {
    let kwargs = (kwargsOrOptions ?? {}) as Record<string, unknown>;
    let opts = options ?? {};
    if (options === undefined && kwargsOrOptions && looksLikeOptions(kwargsOrOptions)) {
      kwargs = {};
      opts = kwargsOrOptions as ApplyOptions;
    }
    return this.producer.applyTask(this.name, args ?? [], kwargs, opts, this.options) as Promise<AsyncResult<R>>;
  }

  /**
   * Send many calls in one round trip to the broker: an array of argument lists, or of `{ args, kwargs, options }`.
   * Resolves when all are stored; every message is checked (JSON, size) before any is sent.
   */
  applyMany(calls: Array<A | Call<A>>): Promise<AsyncResult<R>[]> {
    const normalized = calls.map((c) => (Array.isArray(c) ? { args: c } : c));
    return this.producer.applyMany(this.name, normalized, this.options) as Promise<AsyncResult<R>[]>;
  }
}
