/**
 * Beat's coordination store in memory (see BeatStore in broker.ts): the leader lock with a lease and the per-entry
 * last runs of store.ts's `beat` map; fire() checks and sends in one synchronous step, so it is atomic.
 * State touched: MemoryStore.beat and, through `send`, the target queue.
 */
import type { BeatStore, OutgoingMessage } from '../broker.ts';
import type { MemoryStore } from './store.ts';

/** `check` throws E_CLOSED once the broker is closed (the broker passes it; a bare store for tests needs none). */
export function memoryBeatStore(store: MemoryStore, app: string, send: (m: OutgoingMessage) => void,
  check: () => void = () => {}): BeatStore {
  const state = () => {
    check();
    return store.beatState(app);
  };
  const holds = (owner: string, now: number) => {
    const lock = state().lock;
    return lock !== null && lock.owner === owner && lock.expiresAt > now;
  };
  return {
    acquire: async (owner, ttlMs) => {
      const now = Date.now();
      const s = state();
      if (s.lock && s.lock.owner !== owner && s.lock.expiresAt > now) return false;
      s.lock = { owner, expiresAt: now + Math.round(ttlMs) };
      return true;
    },
    release: async (owner) => {
      const s = state();
      if (s.lock?.owner === owner) s.lock = null;
    },
    lastRuns: async () => new Map(state().runs),
    fire: async (owner, entry, expected, runAt, message) => {
      if (!holds(owner, Date.now())) return false;
      const runs = state().runs;
      if ((runs.get(entry) ?? null) !== (expected === null ? null : Math.round(expected))) return false;
      runs.set(entry, Math.round(runAt));
      send(message);
      return true;
    },
    prune: async (keep) => {
      const runs = state().runs;
      for (const entry of [...runs.keys()]) if (!keep.includes(entry)) runs.delete(entry);
    },
  };
}
