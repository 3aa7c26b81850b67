/**
 * The result of a group: its id and one AsyncResult per member, in order (Celery's GroupResult). `get()` waits for
 * every member and gives their values in the group's order.
 */
import { CeleriacError, ErrorCode, TimeoutError } from '../common/errors.ts';
import { AsyncResult, revokeThrough, type GetOptions, type ResultHandle, type ResultSource, type RevokeOptions } from './async-result.ts';

/** A result from Celery's tuple form: `[[id, parent], null]` a task, `[[id, parent], [members]]` a group. */
function fromTuple(t: unknown, source: ResultSource): AsyncResult<unknown> | GroupResult<unknown> {
  if (!Array.isArray(t) || !Array.isArray(t[0]) || typeof t[0][0] !== 'string') {
    throw new CeleriacError(ErrorCode.MalformedMessage, `a saved group holds something that is not a result tuple: ${JSON.stringify(t)?.slice(0, 200)}`);
  }
  const [[id, parent], members] = t as [[string, unknown], unknown];
  const r = Array.isArray(members)
    ? new GroupResult(id, members.map((m) => fromTuple(m, source)), source)
    : new AsyncResult(id, source);
  if (parent) r.parent = fromTuple(parent, source);
  return r;
}

export class GroupResult<R = unknown> {
  /** The result before this group in a chain, when known. */
  parent: ResultHandle | null = null;

  constructor(readonly id: string, readonly results: Array<AsyncResult<R> | GroupResult<unknown>>, private readonly source: ResultSource) {}

  /** Every member's value, in order; the first failure (in order) is thrown unless `propagate: false`. */
  async get(options: GetOptions = {}): Promise<R[]> {
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
    const values: unknown[] = [];
    for (const r of this.results) {
      const left = deadline - Date.now();
      if (left < 0) throw new TimeoutError(`group ${this.id} did not finish within ${options.timeout} ms`);
      values.push(await r.get({ ...options, timeout: deadline === Infinity ? undefined : left }));
    }
    return values as R[];
  }

  private async states(): Promise<string[]> {
    const backend = await this.source.backend();
    const leaves = this.results.filter((r): r is AsyncResult<R> => r instanceof AsyncResult);
    const metas = await backend.getMany(leaves.map((r) => r.id));
    const nested = await Promise.all(this.results.filter((r): r is GroupResult<unknown> => r instanceof GroupResult)
      .map(async (g) => ((await g.ready()) ? ((await g.successful()) ? 'SUCCESS' : 'FAILURE') : 'PENDING')));
    return [...metas.map((m) => m?.status ?? 'PENDING'), ...nested];
  }

  /** Every member has finished (SUCCESS, FAILURE or REVOKED). */
  async ready(): Promise<boolean> {
    return (await this.states()).every((s) => s === 'SUCCESS' || s === 'FAILURE' || s === 'REVOKED');
  }

  /** Every member succeeded. */
  async successful(): Promise<boolean> {
    return (await this.states()).every((s) => s === 'SUCCESS');
  }

  /** At least one member failed. */
  async failed(): Promise<boolean> {
    return (await this.states()).some((s) => s === 'FAILURE');
  }

  /** How many members succeeded (Celery's completed_count). */
  async completedCount(): Promise<number> {
    return (await this.states()).filter((s) => s === 'SUCCESS').length;
  }

  /** At least one member has not finished. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  /** Every member's task id, nested groups included. */
  taskIds(): string[] {
    return this.results.flatMap((r) => (r instanceof GroupResult ? r.taskIds() : [r.id]));
  }

  /** Revoke every member (Celery's GroupResult.revoke). */
  revoke(options: RevokeOptions = {}): Promise<void> {
    return revokeThrough(this.source, this.taskIds(), options);
  }

  /** Celery's as_tuple: `[[id, parent], [member tuples]]`. */
  asTuple(): unknown {
    return [[this.id, null], this.results.map((r) => (r instanceof GroupResult ? r.asTuple() : [[r.id, null], null]))];
  }

  /** Keep this group's shape in the result backend, so any process can restore it by id (Celery's save()). */
  async save(): Promise<this> {
    await (await this.source.backend()).saveGroup(this.id, this.asTuple());
    return this;
  }

  /** Forget the saved shape (Celery's delete()). */
  async delete(): Promise<void> {
    await (await this.source.backend()).deleteGroup(this.id);
  }

  /** A saved group by id, or null when none was saved (or it expired): Celery's `GroupResult.restore(id)`. */
  static async restore<R = unknown>(source: ResultSource, id: string): Promise<GroupResult<R> | null> {
    const tuple = await (await source.backend()).restoreGroup(id);
    return tuple === null ? null : fromTuple(tuple, source) as GroupResult<R>;
  }

  toJSON(): { id: string; results: unknown[] } {
    return { id: this.id, results: this.results.map((r) => r.toJSON()) };
  }
}
