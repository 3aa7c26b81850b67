/**
 * What a broker must read from a raw envelope, with the Redis scripts' semantics (../redis/lua/reserve-one.lua,
 * ../redis/redis-broker.ts): the delivery tag (or why there is none), the redelivered marks, and kombu's priority bands.
 * A copy of sqlite/envelope.ts: implementations do not import each other (both belong in broker/ as shared code).
 * Keys/tables touched: none.
 */

/** kombu's priority steps: a message of priority p waits in the band of the highest step not above p. */
export const PRIORITY_BANDS = [0, 3, 6, 9] as const;

/** kombu clamps to 0..9 and maps to the highest step not above it (0 is served first). */
export function priorityBand(priority: number | null | undefined): number {
  const p = Math.min(9, Math.max(0, Math.trunc(Number(priority) || 0)));
  let band = 0;
  for (const s of PRIORITY_BANDS) if (s <= p) band = s;
  return band;
}

export type TagRead = { tag: string; reason?: undefined } | { tag?: undefined; reason: string };

/** The envelope's properties.delivery_tag, or the reason it cannot be reserved (the dead-letter reason). */
export function readDeliveryTag(raw: string): TagRead {
  let env: unknown;
  try {
    env = JSON.parse(raw);
  } catch {
    return { reason: 'not a JSON object' };
  }
  if (typeof env !== 'object' || env === null) return { reason: 'not a JSON object' };
  const props = (env as { properties?: unknown }).properties;
  if (typeof props !== 'object' || props === null) return { reason: 'no properties object' };
  const tag = (props as { delivery_tag?: unknown }).delivery_tag;
  if (typeof tag !== 'string' || tag === '') return { reason: 'no delivery_tag in properties' };
  return { tag };
}

/** Mark a message that goes back to its queue: headers.redelivered and properties.delivery_info.redelivered. */
export function markRedelivered(raw: string): string {
  try {
    const env = JSON.parse(raw);
    if (env && typeof env === 'object') {
      if (env.headers && typeof env.headers === 'object') env.headers.redelivered = true;
      const info = env.properties?.delivery_info;
      if (info && typeof info === 'object') info.redelivered = true;
      return JSON.stringify(env);
    }
  } catch {
    // not ours to fix here: it is dead-lettered when it comes round again
  }
  return raw;
}
