/**
 * The result-backend contract: the promises every backend (redis://, sqlite://, memory://) keeps.
 * Records are Celery's (`celery-task-meta-<id>` JSON, see protocol/result-meta.ts), so any Celery client reads them.
 *
 * Promises:
 * 1. store() makes the record readable by get() and wakes every wait() on that id; a stored SUCCESS is never
 *    overwritten (a duplicate run after a redelivery cannot change a result someone may have read).
 * 2. Records expire after `resultExpires` seconds (never when it is null or 0).
 * 3. wait() does not poll: it resolves as soon as a ready record (SUCCESS, FAILURE, REVOKED) is stored, including one
 *    stored before the call, and rejects with a TimeoutError when `timeoutMs` passes first.
 * 4. The chord counter counts each header part once, however often the part is stored. Until chordCleanup(), every
 *    call that finds the header complete gets the parts: a redelivered last part can still publish a body whose first
 *    completer died before sending it (the body is at-least-once, like any task).
 * 5. A header part keeps its FIRST stored run. When chordPartDone() is called again for the same groupId and taskId
 *    with another state or result (a redelivered part whose second run computed something else), the first value
 *    stays and the call adds nothing; the parts returned, and so the body's argument, carry the first value. The
 *    first completed run is the one whose side effects happened first and whose result may already have been read
 *    (a chord completed by it may already have published its body), and a body published again (promise 4) gets
 *    the same argument. This matches promise 1 for the part's own record once it is a SUCCESS.
 */
import type { ResultMeta } from '../protocol/index.ts';

export interface StoreRequest {
  taskId: string;
  meta: ResultMeta;
}

export interface ChordPart {
  groupId: string;
  /** Position of the part in the chord header (Celery's group_index); null sorts last. */
  index: number | null;
  taskId: string;
  state: string;
  result: unknown;
}

export interface ResultBackend {
  readonly displayUrl: string;
  store(entries: StoreRequest[]): Promise<void>;
  get(taskId: string): Promise<ResultMeta | null>;
  getMany(taskIds: string[]): Promise<(ResultMeta | null)[]>;
  wait(taskId: string, timeoutMs: number): Promise<ResultMeta>;
  forget(taskId: string): Promise<void>;
  /** Record the header size of a chord before its parts are published. */
  setChordSize(groupId: string, size: number): Promise<void>;
  /**
   * Add a finished header part; when the header is complete, returns every part's [task id, state, result] in header
   * order, otherwise null.
   */
  chordPartDone(part: ChordPart): Promise<Array<[string, string, unknown]> | null>;
  /** Drop a completed chord's bookkeeping. */
  chordCleanup(groupId: string): Promise<void>;
  /**
   * Keep a group's result shape (Celery's GroupResult.save: `{"result": [[id, parent], [member tuples]]}` under
   * `celery-taskset-meta-<id>` on Redis), expiring as results do; restoreGroup reads it back (null when absent).
   */
  saveGroup(groupId: string, tuple: unknown): Promise<void>;
  restoreGroup(groupId: string): Promise<unknown | null>;
  deleteGroup(groupId: string): Promise<void>;
  close(): Promise<void>;
}

export interface BackendOptions {
  /** Seconds; null or 0 keeps records for ever. */
  resultExpires: number | null;
}
