/**
 * The batch sizes and intervals every store (redis, sqlite, memory; brokers and result backends) uses, in one place
 * so the three implementations of a contract cannot drift apart. Each is big enough to amortise a round trip or a
 * transaction and small enough not to stall the store (one Redis script, one SQLite write lock) for long.
 */

/** Expired reservations brought back per recover() call (the worker calls it again while any come back). */
export const RECOVER_BATCH = 500;

/** Due parked messages moved per promoteDue() call: the default of its `limit`. */
export const PROMOTE_BATCH = 1000;

/** Dead-letter entries read by deadLetters() when the caller gives no `limit`. */
export const DEAD_LETTERS_LIMIT = 100;

/** Bytes of a message a dead letter keeps (its head, cut at a UTF-8 boundary), so an entry stays well under 64 KB. */
export const DEAD_LETTER_HEAD_BYTES = 4096;

/** Characters of a reason a dead letter keeps. */
export const DEAD_LETTER_REASON_CHARS = 1024;

/** Dead-letter entries a list keeps by default (`BrokerOptions.deadLetterLimit`): older ones are dropped. */
export const DEAD_LETTERS_KEPT = 10_000;

/** The largest message a broker hands to a worker when the app does not say (`maxMessageBytes`'s default). */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Result records written per store call (one Redis script call). */
export const STORE_BATCH = 500;

/** How often (at most) a result backend deletes expired records on store(); reads ignore them meanwhile. */
export const SWEEP_EVERY_MS = 60_000;

/** `resultExpires` (seconds; null or 0: kept for ever) in milliseconds, 0 meaning for ever. */
export function resultTtlMs(resultExpires: number | null): number {
  return resultExpires !== null && resultExpires > 0 ? resultExpires * 1000 : 0;
}

/** When a record written at `now` expires (ms since the epoch), or null when it is kept for ever. */
export function expiresAt(ttlMs: number, now: number): number | null {
  return ttlMs > 0 ? now + ttlMs : null;
}

/**
 * How long a revoke is remembered when the caller does not say (ms): Celery's REVOKE_EXPIRES (10800 s). A message
 * with a revoked id that arrives later than this runs.
 */
export const REVOKE_EXPIRES_MS = 3 * 60 * 60 * 1000;

/** Revoked ids a store keeps, Celery's REVOKES_MAX: past it, those that expire soonest are dropped first. */
export const REVOKES_MAX = 50_000;

/** Drop the expired entries of `held` (id -> expires at, ms), then those that expire soonest until `max` remain. */
export function pruneRevokes(held: Map<string, number>, now: number, max = REVOKES_MAX): void {
  for (const [id, until] of held) if (until <= now) held.delete(id);
  if (held.size <= max) return;
  const drop = [...held].sort((a, b) => a[1] - b[1]).slice(0, held.size - max);
  for (const [id] of drop) held.delete(id);
}
