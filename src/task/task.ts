/**
 * A task definition: a name (the same string on both sides of the wire), a handler typed by its parameters, and
 * options. Calling it publishes a message; running it is the worker's business.
 */
import type { AsyncResult } from './async-result.ts';
import type { GroupResult } from './group-result.ts';
import { starmapSignature } from './canvas.ts';
import { Signature, type CanvasApp } from './signature.ts';
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
export interface TaskProducer extends CanvasApp {
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
   * A signature of this task with the first arguments given (Celery's `s`): in a chain, the previous result is
   * prepended to them, so `add.s(3)` in `chain(add.s(1, 2), add.s(3))` runs `add(3, 3)`.
   */
  s(...args: Partial<A>): Signature<R> {
    return this.signature(args as unknown[], {}, false);
  }

  /** A signature whose arguments are final (Celery's `si`): a chain does not prepend the previous result. */
  si(...args: A): Signature<R> {
    return this.signature(args, {}, true);
  }

  /** A signature with keyword arguments too; `immutable` as `si`. */
  signature(args: unknown[] = [], kwargs: Record<string, unknown> = {}, immutable = false): Signature<R> {
    return new Signature<R>(this.producer, {
      task: this.name, args: [...args], kwargs: { ...kwargs }, options: {}, subtask_type: null, immutable, chord_size: null,
    });
  }

  /** One message that runs this task once per item, `task(item)`, and gives the list of values (Celery's `map`). */
  map(items: unknown[]): Signature<R[]> {
    return new Signature<R[]>(this.producer, starmapSignature('celery.map', 'xmap', this.signature().toJSON(), [...items]));
  }

  /** One message that runs this task once per argument list, `task(...args)` (Celery's `starmap`). */
  starmap(argsList: A[]): Signature<R[]> {
    return new Signature<R[]>(this.producer, starmapSignature('celery.starmap', 'xstarmap', this.signature().toJSON(),
      argsList.map((a) => [...a])));
  }

  /** The argument lists split into messages of `n` calls each, run as a group (Celery's `chunks`). */
  chunks(argsList: A[], n: number): Signature<R[][], GroupResult<R[]>> {
    return new Signature<R[][], GroupResult<R[]>>(this.producer, {
      task: 'celery.chunks', args: [], kwargs: { task: this.signature().toJSON(), it: argsList.map((a) => [...a]), n },
      options: {}, subtask_type: 'chunks', immutable: true, chord_size: null,
    });
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
