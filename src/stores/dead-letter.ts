/**
 * The dead-letter entry, built here for every broker: what is kept of a message that was set aside (it could not be
 * reserved or run), so a person can read why. Redis keeps it as JSON in the dead-letter list (`LPUSH`, newest
 * first; the reserve script builds the same object in Lua, broker/redis/lua/reserve-one.lua), SQLite as a row of
 * celeriac_dead_letters, memory as the object itself (docs/redis-layout.md).
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';

export interface DeadLetter {
  /** Why the message was set aside. */
  reason: string;
  /** The queue it came from ('' for an unreadable reservation whose queue is unknown). */
  queue: string;
  /** The message exactly as it was received. */
  raw: string;
  /** When it was set aside, ISO-8601 UTC. */
  at: string;
}

export function deadLetterEntry(reason: string, queue: string, raw: string, now: number = Date.now()): DeadLetter {
  return { reason, queue, raw, at: new Date(now).toISOString() };
}

/** An entry read back from its JSON text (a Redis list item); E_MALFORMED_MESSAGE when it is not one. */
export function parseDeadLetter(text: string, list: string): DeadLetter {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch {
    entry = null;
  }
  const e = entry as Partial<Record<keyof DeadLetter, unknown>> | null;
  if (e === null || typeof e !== 'object' || typeof e.reason !== 'string' || typeof e.queue !== 'string'
    || typeof e.raw !== 'string' || typeof e.at !== 'string') {
    throw new CeleriacError(ErrorCode.MalformedMessage,
      `dead-letter list ${list} holds an item that is not a JSON {reason, queue, raw, at} entry: ${text.slice(0, 200)}`);
  }
  return { reason: e.reason, queue: e.queue, raw: e.raw, at: e.at };
}
