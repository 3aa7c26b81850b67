/**
 * The dead-letter entry, built here for every broker: what is kept of a message that was set aside (it could not be
 * reserved or run), so a person can read why. Redis keeps it as JSON in the dead-letter list (`LPUSH`, newest
 * first; the reserve script builds the same object in Lua, broker/redis/lua/reserve-one.lua), SQLite as a row of
 * celeriac_dead_letters, memory as the object itself (docs/redis-layout.md).
 *
 * An entry is bounded whatever the message: it keeps the head of the message (DEAD_LETTER_HEAD_BYTES, cut at a UTF-8
 * boundary), its size and its SHA-1, so a 70 MB message leaves a few KB. A list keeps the newest `deadLetterLimit`
 * entries (DEAD_LETTERS_KEPT by default).
 */
import { createHash } from 'node:crypto';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { DEAD_LETTER_HEAD_BYTES, DEAD_LETTER_REASON_CHARS } from './limits.ts';

export interface DeadLetter {
  /** Why the message was set aside. */
  reason: string;
  /** The queue it came from ('' for an unreadable reservation whose queue is unknown). */
  queue: string;
  /** The message as it was received: whole, or its first DEAD_LETTER_HEAD_BYTES bytes when `truncated`. */
  raw: string;
  /** When it was set aside, ISO-8601 UTC. */
  at: string;
  /** The size of the whole message in bytes. */
  size: number;
  /** The SHA-1 of the whole message's bytes, hex (Redis scripts can compute only this hash). */
  sha1: string;
  /** `raw` is only the head of the message. */
  truncated: boolean;
}

/** The first `limit` bytes of `text` as text, shortened so that no character is cut in two. */
export function headOf(text: string, limit: number = DEAD_LETTER_HEAD_BYTES): string {
  if (text.length <= limit / 3 || Buffer.byteLength(text) <= limit) return text;
  const buf = Buffer.from(text.slice(0, limit));
  if (buf.length <= limit) return buf.toString();
  let cut = limit;
  while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--;
  return buf.subarray(0, cut).toString();
}

export function deadLetterEntry(reason: string, queue: string, raw: string, now: number = Date.now()): DeadLetter {
  const head = headOf(raw);
  return {
    reason: reason.length > DEAD_LETTER_REASON_CHARS ? `${reason.slice(0, DEAD_LETTER_REASON_CHARS)}…` : reason,
    queue,
    raw: head,
    at: new Date(now).toISOString(),
    size: Buffer.byteLength(raw),
    sha1: createHash('sha1').update(raw).digest('hex'),
    truncated: head.length < raw.length,
  };
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
  // entries written before size, sha1 and truncated existed kept the whole message
  return {
    reason: e.reason, queue: e.queue, raw: e.raw, at: e.at,
    size: typeof e.size === 'number' ? e.size : Buffer.byteLength(e.raw),
    sha1: typeof e.sha1 === 'string' ? e.sha1 : createHash('sha1').update(e.raw).digest('hex'),
    truncated: e.truncated === true,
  };
}

/** The reason every broker gives for a message over maxMessageBytes (the worker's intake says the same). */
export function tooBigReason(size: number, max: number): string {
  return `message of ${size} bytes is over maxMessageBytes (${max})`;
}

/**
 * The task id of a protocol-2 message found without decoding it (as reserve-one.lua does for one too big to read):
 * the first "id" key of its headers object before any nested object, within 64 KiB of its start.
 */
export function headerTaskId(raw: string): string | undefined {
  const h = raw.search(/"headers"\s*:\s*\{/);
  if (h < 0) return undefined;
  return /^"headers"\s*:\s*\{[^{}]*?"id"\s*:\s*"([^"\\]+)"/.exec(raw.slice(h, h + 65536))?.[1];
}
