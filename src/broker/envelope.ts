/**
 * What every broker reads from a raw envelope, with the Redis scripts' semantics (redis/lua/reserve-one.lua): the
 * delivery tag (or why there is none), the priority, kombu's priority bands, and the redelivered marks (with a fresh
 * tag, see protocol/envelope.ts markRedelivered). Shared by the implementations so the semantics are written once.
 */
import { randomUUID } from 'node:crypto';
import { markRedelivered } from '../protocol/envelope.ts';

/**
 * A message going back to its queue: marked redelivered, under a new delivery tag. `recovered`: taken from a holder
 * whose lease lapsed (counted in the message), not given back by it.
 */
export function redelivered(raw: string, recovered: boolean): string {
  return markRedelivered(raw, randomUUID(), recovered);
}

/** properties.priority of a raw envelope (0 when absent or unreadable). */
export function priorityOf(raw: string): number {
  try {
    const p = JSON.parse(raw)?.properties?.priority;
    return typeof p === 'number' ? p : 0;
  } catch {
    return 0;
  }
}

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

