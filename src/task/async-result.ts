/**
 * A handle on a task's result by id, usable from any process: `app.AsyncResult(id)` or what `delay()` returns.
 * States are Celery's; an id nobody stored yet reads as PENDING (Celery cannot tell unknown from waiting either).
 */
import { CeleriacError, ErrorCode, TaskRevokedError } from '../common/errors.ts';
import { READY_STATES, exceptionToError, type ResultMeta, type TaskState } from '../protocol/index.ts';
import type { ResultBackend } from '../backend/backend.ts';

export interface ResultSource {
  backend(): Promise<ResultBackend>;
  /** Revoke by id (the app's revoke: stored in the broker and broadcast). */
  revoke?(taskIds: string[], options?: RevokeOptions): Promise<void>;
}

export interface RevokeOptions {
  /** Also stop the task if it is running (its AbortSignal fires; Celery kills the process). */
  terminate?: boolean;
  /** Celery's signal name for terminate, e.g. 'SIGKILL' (default 'SIGTERM'). */
  signal?: string;
  /** Seconds the revoke is kept in the broker (default 10800). */
  expires?: number;
}

/** Revoke through a source that can (an app); E_BAD_OPTION for one that cannot. */
export function revokeThrough(source: ResultSource, ids: string[], options: RevokeOptions): Promise<void> {
  if (!source.revoke) {
    return Promise.reject(new CeleriacError(ErrorCode.BadOption, 'this result was not made by an app, so it cannot revoke'));
  }
  return source.revoke(ids, options);
}

export interface GetOptions {
  /** Milliseconds to wait for a ready state; default: wait for ever. */
  timeout?: number;
  /** Throw the task's error on FAILURE/REVOKED (default true); false returns the exception object instead. */
  propagate?: boolean;
}

/** What a parent result is: a task's AsyncResult or a group's GroupResult. */
export interface ResultHandle {
  readonly id: string;
  get(options?: GetOptions): Promise<unknown>;
  ready(): Promise<boolean>;
}

export class AsyncResult<R = unknown> {
  /** The result of the step before this one in a chain (or a chord's header group), when known. */
  parent: ResultHandle | null = null;

  constructor(readonly id: string, private readonly source: ResultSource) {}

  /** The stored record, or null while PENDING. */
  async meta(): Promise<ResultMeta | null> {
    return (await this.source.backend()).get(this.id);
  }

  async state(): Promise<TaskState> {
    return (await this.meta())?.status ?? 'PENDING';
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /** The stored value as is: the return value, an exception object, or progress metadata. */
  async info(): Promise<unknown> {
    return (await this.meta())?.result ?? null;
  }

  async traceback(): Promise<string | null> {
    return (await this.meta())?.traceback ?? null;
  }

  /** Wait for the task to finish and return its value; a failure is rethrown with the remote type and message. */
  async get(options: GetOptions = {}): Promise<R> {
    const backend = await this.source.backend();
    const meta = await backend.wait(this.id, options.timeout ?? Infinity);
    if (meta.status === 'SUCCESS' || options.propagate === false) return meta.result as R;
    if (meta.status === 'REVOKED') {
      const why = (meta.result as { exc_message?: unknown[] } | null)?.exc_message?.[0];
      throw new TaskRevokedError(this.id, typeof why === 'string' ? why : 'revoked');
    }
    throw exceptionToError(this.id, meta.result, meta.traceback);
  }

  /** Revoke this task everywhere (Celery's `AsyncResult.revoke`): see `Celeriac.revoke`. */
  revoke(options: RevokeOptions = {}): Promise<void> {
    return revokeThrough(this.source, [this.id], options);
  }

  async forget(): Promise<void> {
    await (await this.source.backend()).forget(this.id);
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  toString(): string {
    return this.id;
  }
}
