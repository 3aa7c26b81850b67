/**
 * A task definition: a name (the same string on both sides of the wire), a handler typed by its parameters, and
 * options. Calling it publishes a message; running it is the worker's business.
 */
import type { AsyncResult, ResultSource } from './async-result.ts';
import type { TaskContext } from './context.ts';
import { refuseAmbiguousKwargs, type ApplyOptions, type ResolvedTaskOptions, type TaskOptions } from './options.ts';

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

export class Task<A extends unknown[] = any[], R = unknown> {
  constructor(
    readonly name: string,
    readonly handler: TaskHandler<A, unknown>,
    readonly options: Readonly<TaskOptions>,
    private readonly producer: TaskProducer,
    /** The options with every default filled in, as workers apply them. */
    readonly resolved: Readonly<ResolvedTaskOptions>,
  ) {}

  /** Send the task with positional arguments (Celery's `delay`). Resolves once the broker has stored the message. */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /**
   * Send the task with arguments, keyword arguments and options (Celery's `apply_async(args, kwargs, options)`).
   * Options are always the third argument: `applyAsync([1, 2], {}, { countdown: 10 })`. Unknown option names and bad
   * values are refused (E_BAD_OPTION) before anything is published. Called with no third argument and a kwargs object
   * made only of option names (`applyAsync(args, { countdown: 10 })`), it throws E_AMBIGUOUS_OPTIONS; pass `{}` as the
   * third argument when the task really takes keyword arguments with those names.
   */
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>> {
    if (arguments.length < 3) {
      try {
        refuseAmbiguousKwargs(kwargs, this.name, 'applyAsync(args');
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.producer.applyTask(this.name, args ?? [], kwargs ?? {}, options ?? {}, this.options) as Promise<AsyncResult<R>>;
  }

  /**
   * Send many calls in one round trip to the broker: an array of argument lists, or of `{ args, kwargs, options }`.
   * Resolves when all are stored; every message is checked (JSON, size) before any is sent.
   */
  applyMany(calls: Array<A | Call<A>>): Promise<AsyncResult<R>[]> {
    const normalized = Array.isArray(calls) ? calls.map((c) => (Array.isArray(c) ? { args: c } : c)) : calls;
    return this.producer.applyMany(this.name, normalized, this.options) as Promise<AsyncResult<R>[]>;
  }
}
