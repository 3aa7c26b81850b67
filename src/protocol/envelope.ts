/**
 * The outer kombu envelope: the one JSON string that is LPUSHed onto a queue list (docs/wire-format.md §3).
 *
 * Invariants:
 * - Pure: strings in, values out. No I/O.
 * - Every rejection is a MalformedMessageError carrying the task id whenever the headers name one, so the caller can
 *   still store a FAILURE for it instead of dropping the message silently.
 * - Only JSON bodies are accepted. Pickle and YAML are refused by content type before any byte of the body is parsed.
 * - Producers always send `body_encoding: "base64"`; consumers accept a plain-text body too (s12 m2).
 */
import { Buffer } from 'node:buffer';
import { MalformedMessageError } from '../common/errors.ts';
import { parseJson, stringifyJson } from '../common/exact-json.ts';

export interface DeliveryInfo {
  exchange: string;
  routing_key: string;
  redelivered?: boolean;
}

export interface EnvelopeProperties {
  delivery_tag?: string;
  delivery_info?: DeliveryInfo;
  priority?: number;
  body_encoding?: string;
  correlation_id?: string | null;
  reply_to?: string;
  delivery_mode?: number;
  expiration?: string;
  [k: string]: unknown;
}

export interface Envelope {
  body: string;
  'content-type'?: string;
  'content-encoding'?: string;
  headers: Record<string, unknown>;
  properties: EnvelopeProperties;
}

export const JSON_CONTENT_TYPE = 'application/json';

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The task id the headers name, if any: good enough to attach to an error, never trusted for anything else. */
function headerTaskId(headers: unknown): string | null {
  if (!isPlainObject(headers)) return null;
  const id = headers.id;
  return typeof id === 'string' && id !== '' ? id : null;
}

export function parseEnvelope(raw: string): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new MalformedMessageError(`envelope is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw new MalformedMessageError('envelope is not a JSON object');
  const taskId = headerTaskId(parsed.headers);
  if (parsed.headers === undefined) {
    // kombu treats absent headers as empty; protocol 1 messages rely on that being harmless.
    parsed.headers = {};
  } else if (!isPlainObject(parsed.headers)) {
    throw new MalformedMessageError('headers is not an object', taskId);
  }
  if (!isPlainObject(parsed.properties)) {
    throw new MalformedMessageError(
      parsed.properties === undefined ? 'properties are missing' : 'properties is not an object',
      taskId,
    );
  }
  if (typeof parsed.body !== 'string') {
    throw new MalformedMessageError(parsed.body === undefined ? 'body is missing' : 'body is not a string', taskId);
  }
  return parsed as unknown as Envelope;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: string, taskId: string | null): string {
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 === 1 || !BASE64.test(compact)) {
    throw new MalformedMessageError('body is not valid base64 although body_encoding is base64', taskId);
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}

export function decodeBody(env: Envelope): unknown {
  const taskId = headerTaskId(env.headers);
  const encoding = env.properties?.body_encoding;
  let text: string;
  if (encoding === 'base64') text = decodeBase64(env.body, taskId);
  else if (encoding === undefined || encoding === null) text = env.body;
  else throw new MalformedMessageError(`body_encoding ${JSON.stringify(encoding)} is not supported (base64 or none)`, taskId);

  const type = env['content-type'];
  if (type === undefined || type === null || type === '') {
    // A Python worker dies on this one (s12 m6); we refuse it instead of guessing.
    throw new MalformedMessageError('content-type is missing (application/json required)', taskId);
  }
  if (typeof type !== 'string' || type.trim().toLowerCase() !== JSON_CONTENT_TYPE) {
    const shown = typeof type === 'string' ? type : JSON.stringify(type);
    const pickle = shown === 'application/x-python-serialize' ? ' (pickle)' : '';
    throw new MalformedMessageError(`content type ${shown}${pickle} is not accepted (JSON only)`, taskId);
  }
  try {
    return parseJson(text);
  } catch (err) {
    throw new MalformedMessageError(`body is not valid JSON (${(err as Error).message})`, taskId);
  }
}

/** Room for headers and properties around a body: a message may be this much over its payload's base64. */
export const ENVELOPE_ALLOWANCE = 64 * 1024;

/**
 * The largest raw message that can carry `payloadMax` bytes of payload (maxMessageBytes applies to the payload: the
 * arguments, keyword arguments and canvas, before base64), for the checks that must not decode a message.
 */
export function envelopeLimit(payloadMax: number): number {
  return Math.ceil(payloadMax / 3) * 4 + ENVELOPE_ALLOWANCE;
}

/** The payload's size in a raw envelope (its base64 body decoded), found without parsing the message. */
export function payloadBytes(raw: string): number {
  const at = raw.indexOf('"body"');
  const open = at < 0 ? -1 : raw.indexOf('"', raw.indexOf(':', at + 6) + 1);
  const close = open < 0 ? -1 : raw.indexOf('"', open + 1); // base64 has neither quotes nor backslashes
  if (close < 0) return Buffer.byteLength(raw);
  const n = close - open - 1;
  const pad = raw[close - 1] === '=' ? (raw[close - 2] === '=' ? 2 : 1) : 0;
  return Math.floor(n / 4) * 3 - pad;
}

/** How often a message was recovered (RECOVERIES_HEADER), 0 when never or unreadable. */
export function recoveriesOf(headers: Record<string, unknown>): number {
  const n = headers[RECOVERIES_HEADER];
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
}

export function encodeBody(body: unknown): string {
  // JSON.stringify(undefined) yields undefined; the wire has no such value, so it travels as null.
  return Buffer.from(stringifyJson(body) ?? 'null', 'utf8').toString('base64');
}

/**
 * celeriac's count of how often a message was recovered from a holder that stopped renewing its lease (a dead or
 * stalled worker). An extra header: Python Celery carries it along and ignores it.
 */
export const RECOVERIES_HEADER = 'celeriac_recoveries';

/**
 * What a message looks like when it goes back to its queue: headers.redelivered and delivery_info.redelivered set,
 * as kombu restores it. With `newTag`, properties.delivery_tag is replaced too, so a late ack from the reservation
 * that lost the message cannot end the new one. `recovered` (its holder stopped renewing, as opposed to giving it
 * back) also counts one more recovery in RECOVERIES_HEADER. Input that is not an envelope object comes back
 * unchanged: it is dead-lettered when a worker reserves it again.
 */
export function markRedelivered(raw: string, newTag?: string, recovered = false): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (!isPlainObject(parsed)) return raw;
  if (parsed.headers === undefined || parsed.headers === null) parsed.headers = {};
  if (!isPlainObject(parsed.headers)) return raw;
  parsed.headers.redelivered = true;
  if (recovered) parsed.headers[RECOVERIES_HEADER] = recoveriesOf(parsed.headers) + 1;
  const props = parsed.properties;
  if (isPlainObject(props)) {
    if (isPlainObject(props.delivery_info)) props.delivery_info.redelivered = true;
    if (newTag !== undefined) props.delivery_tag = newTag;
  }
  return JSON.stringify(parsed);
}
