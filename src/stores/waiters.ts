/**
 * Result waiters: the bookkeeping behind every result backend's wait() (backend.ts, promise 3), written once.
 *
 * A wait registers first and looks second: `look` is the backend's first read of the record (after subscribing to
 * its channel on Redis), so a record stored between the two is caught either by the look or by the wake-up the
 * store delivers to the registered waiter (settle / settleRecord). A wait ends when a ready record (SUCCESS,
 * FAILURE, REVOKED) arrives, rejects with TimeoutError (E_TIMEOUT) when `timeoutMs` passes first — the timer is armed
 * before the look, so a store that cannot be reached does not make a bounded wait hang — and rejects with E_CLOSED
 * when the backend closes (closeAll()).
 *
 * Hooks tell the backend when a task id gets its first waiter and loses its last (Redis subscribes and unsubscribes
 * the record's channel), and when the process starts and stops waiting at all (SQLite listens to the file's change
 * feed; memory registers with its shared store). They are called synchronously inside wait() and its cleanup.
 */
import { CeleriacError, ErrorCode, TimeoutError } from '../common/errors.ts';
import { READY_STATES, decodeResultMeta, type ResultMeta } from '../protocol/index.ts';

/** The error of a wait still pending when its backend closes (and of a wait started after). */
export function closedWhileWaiting(): CeleriacError {
  return new CeleriacError(ErrorCode.Closed, 'the result backend was closed while waiting for a result');
}

export function waitTimedOut(taskId: string, timeoutMs: number): TimeoutError {
  return new TimeoutError(`no result for task ${taskId} within ${timeoutMs / 1000}s`);
}

export interface WaiterHooks {
  /** `taskId` got its first waiter. */
  firstOn?(taskId: string): void;
  /** The last waiter on `taskId` left. */
  lastOn?(taskId: string): void;
  /** Somebody waits, where nobody did. */
  busy?(): void;
  /** Nobody waits any more. */
  idle?(): void;
}

type Waiter = { resolve: (m: ResultMeta) => void; reject: (e: Error) => void };

export class ResultWaiters {
  private readonly byId = new Map<string, Set<Waiter>>();
  private closed = false;

  constructor(private readonly hooks: WaiterHooks = {}) {}

  /** How many task ids are waited for. */
  get size(): number {
    return this.byId.size;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  has(taskId: string): boolean {
    return this.byId.has(taskId);
  }

  /**
   * Resolve with the ready record of `taskId`: `look()` reads it once (it may return a record that is not ready, or
   * null), then store wake-ups settle it.
   */
  async wait(taskId: string, timeoutMs: number, look: () => Promise<ResultMeta | null> | ResultMeta | null): Promise<ResultMeta> {
    if (this.closed) throw closedWhileWaiting();
    let waiter!: Waiter;
    const done = new Promise<ResultMeta>((resolve, reject) => (waiter = { resolve, reject }));
    this.add(taskId, waiter);
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(timeoutMs)) timer = setTimeout(() => waiter.reject(waitTimedOut(taskId, timeoutMs)), Math.max(0, timeoutMs));
    try {
      const current = await Promise.race([(async () => look())(), done]);
      if (current && READY_STATES.has(current.status)) return current;
      return await done;
    } finally {
      clearTimeout(timer);
      this.remove(taskId, waiter);
    }
  }

  /** A record of `taskId` was stored: every waiter on it resolves if it is ready (others keep waiting). */
  settle(taskId: string, meta: ResultMeta): void {
    if (!READY_STATES.has(meta.status)) return;
    for (const w of [...(this.byId.get(taskId) ?? [])]) w.resolve(meta);
  }

  /** Every waiter on `taskId` fails with `err` (its record cannot be read). */
  fail(taskId: string, err: Error): void {
    for (const w of [...(this.byId.get(taskId) ?? [])]) w.reject(err);
  }

  /** The record JSON of `taskId` as stored: settle its waiters, or fail them when it cannot be decoded. */
  settleRecord(taskId: string, json: string): void {
    if (!this.byId.has(taskId)) return;
    let meta: ResultMeta;
    try {
      meta = decodeResultMeta(json, taskId);
    } catch (err) {
      this.fail(taskId, err as Error);
      return;
    }
    this.settle(taskId, meta);
  }

  /** The backend closes: every pending wait rejects with E_CLOSED, and later ones do at once. */
  closeAll(): void {
    this.closed = true;
    for (const set of [...this.byId.values()]) for (const w of [...set]) w.reject(closedWhileWaiting());
  }

  private add(taskId: string, w: Waiter): void {
    if (this.byId.size === 0) this.hooks.busy?.();
    let set = this.byId.get(taskId);
    if (!set) {
      this.byId.set(taskId, (set = new Set()));
      this.hooks.firstOn?.(taskId);
    }
    set.add(w);
  }

  private remove(taskId: string, w: Waiter): void {
    const set = this.byId.get(taskId);
    if (!set?.delete(w) || set.size > 0) return;
    this.byId.delete(taskId);
    this.hooks.lastOn?.(taskId);
    if (this.byId.size === 0) this.hooks.idle?.();
  }
}
