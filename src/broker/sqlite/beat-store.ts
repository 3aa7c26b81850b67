/**
 * Beat's coordination store on SQLite (see BeatStore in broker.ts): a leader lock with a lease and per-entry last
 * runs, with fire() = check lock + check last run + record run + enqueue message in one IMMEDIATE transaction,
 * so any number of beat processes on one file send each tick once (the same steps as redis/lua/beat-fire.lua).
 * Tables touched: celeriac_beat_locks, celeriac_beat_runs, celeriac_messages and celeriac_counters (the send).
 */
import type { BeatStore, OutgoingMessage } from '../broker.ts';
import { lazyImmediate, type Db } from '../../stores/sqlite/database.ts';
import type { BrokerStatements } from './schema.ts';

/** `use` runs each call the broker's way: E_CLOSED after close, a SQLite failure as a coded error. */
export function sqliteBeatStore(
  db: Db,
  s: BrokerStatements,
  app: string,
  enqueue: (m: OutgoingMessage) => void,
  changed: () => void,
  use: <T>(fn: () => T) => T,
): BeatStore {
  const holds = (owner: string, now: number) => {
    const lock = s.lockHolder.get(app);
    return lock !== undefined && lock.owner === owner && lock.expires_at > now;
  };

  // built on first use, so a store asked for after close() fails its calls with E_CLOSED rather than here
  const acquire = lazyImmediate(() => db, (owner: string, ttlMs: number, now: number) => {
    const lock = s.lockHolder.get(app);
    if (lock && lock.owner !== owner && lock.expires_at > now) return false;
    s.setLock.run(app, owner, now + Math.round(ttlMs));
    return true;
  });

  const fire = lazyImmediate(
    () => db,
    (owner: string, entry: string, expected: number | null, runAt: number, m: OutgoingMessage, now: number) => {
      if (!holds(owner, now)) return false;
      const last = s.lastRun.get(app, entry) as number | undefined;
      if ((last ?? null) !== expected) return false;
      s.setLastRun.run(app, entry, Math.round(runAt));
      enqueue(m);
      return true;
    },
  );

  return {
    acquire: async (owner, ttlMs) => use(() => acquire(owner, ttlMs, Date.now())),
    release: async (owner) => {
      use(() => s.unlock.run(app, owner));
    },
    lastRuns: async () => use(() => new Map(s.lastRuns.all(app).map((r) => [r.entry, Number(r.last_run)]))),
    fire: async (owner, entry, expected, runAt, message) => {
      const sent = use(() => fire(owner, entry, expected === null ? null : Math.round(expected), runAt, message, Date.now()));
      if (sent) changed();
      return sent;
    },
    prune: async (keep) => {
      use(() => s.pruneRuns.run(app, JSON.stringify(keep)));
    },
  };
}
