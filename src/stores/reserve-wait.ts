/**
 * The wait loop of every broker's reserve(queues, max, waitMs) (broker.ts), written once: return at once with what
 * is ready; when nothing is, wait up to `waitMs` for the first message, trying again whenever the store signals a
 * change, and end early (with nothing) on interrupt() or close.
 *
 * A broker supplies the two store-specific parts:
 * - tryReserve(): one attempt, atomic in the store (a Redis script, an IMMEDIATE transaction, a synchronous step);
 *   an empty batch means nothing was ready.
 * - onChange(wake): call `wake` after anything that may have made a message ready (Redis: a wake-up on the queues'
 *   channels, plus a short poll for producers that publish none; SQLite: the file's change feed; memory: the
 *   store's listeners), until the returned function is called. Spurious wake-ups are fine: the loop re-checks.
 * The loop listens before its first attempt, so a change that lands while an attempt runs is not missed: it makes
 * the loop try again at once instead of sleeping. A batch that is not empty is always returned, never dropped, even
 * when an interrupt arrived meanwhile (its messages are reserved already).
 */

/** The shape of a reserve() result that the loop needs (broker.ts ReserveResult). */
export interface Batch {
  deliveries: readonly unknown[];
  rejected: readonly unknown[];
}

export const isEmptyBatch = (b: Batch): boolean => b.deliveries.length === 0 && b.rejected.length === 0;

/** The pending waits of one broker, so interrupt() (and close()) can end them all. */
export class PendingWaits {
  private readonly stops = new Set<() => void>();

  /** Register a wait's stop function; returns the function that unregisters it. */
  track(stop: () => void): () => void {
    this.stops.add(stop);
    return () => this.stops.delete(stop);
  }

  /** End every pending wait (each returns what it has: nothing). */
  interrupt(): void {
    for (const stop of [...this.stops]) stop();
  }
}

export interface WaitForWork<R extends Batch> {
  tryReserve: () => R | Promise<R>;
  onChange: (wake: () => void) => () => void;
  waitMs: number;
  waits: PendingWaits;
  /** True once the broker is closed: the loop stops waiting. */
  closed: () => boolean;
}

export async function reserveOrWait<R extends Batch>(w: WaitForWork<R>): Promise<R> {
  if (w.waitMs <= 0) return w.tryReserve();
  const deadline = Date.now() + w.waitMs;
  let changed = false;
  let stopped = false;
  let wakeUp: (() => void) | null = null;
  const unlisten = w.onChange(() => {
    changed = true;
    wakeUp?.();
  });
  const untrack = w.waits.track(() => {
    stopped = true;
    wakeUp?.();
  });
  try {
    let batch = await w.tryReserve();
    while (isEmptyBatch(batch) && !stopped && !w.closed()) {
      if (!changed) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, left);
          function done() {
            clearTimeout(timer);
            wakeUp = null;
            resolve();
          }
          wakeUp = done;
        });
        if (!changed || stopped || w.closed()) break; // the time is up, or interrupt()
      } else if (Date.now() >= deadline) {
        break; // changes keep coming, but none left a message for us in time
      }
      changed = false;
      batch = await w.tryReserve();
    }
    return batch;
  } finally {
    unlisten();
    untrack();
  }
}
