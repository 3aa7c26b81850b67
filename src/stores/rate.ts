/**
 * Global rate limits, the same rule in every store (the Redis script broker/redis/lua/rate.lua mirrors it): a
 * task named N may start once per `intervalMs` on the whole broker. The store keeps N's next free start time (its
 * "theoretical arrival time", as GCRA calls it). A caller whose turn is at most `aheadMs` away takes it (the time
 * moves on by one interval) and waits for it; one further away takes nothing and asks again when it is that close.
 * So callers never take more than one interval each, and at most aheadMs / intervalMs turns are held at once.
 */
export interface RateTurn {
  /** The caller holds a turn: start after waitMs. Otherwise ask again after waitMs. */
  reserved: boolean;
  waitMs: number;
}

export function rateStep(nextFree: number | null, now: number, intervalMs: number, aheadMs: number): { turn: RateTurn; nextFree: number | null } {
  const at = Math.max(nextFree ?? 0, now);
  const wait = at - now;
  if (wait <= aheadMs) return { turn: { reserved: true, waitMs: wait }, nextFree: at + intervalMs };
  return { turn: { reserved: false, waitMs: wait - aheadMs }, nextFree };
}
