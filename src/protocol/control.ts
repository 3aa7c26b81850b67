/**
 * Remote control (pidbox) and event envelopes, as Celery sends them (docs/wire-format.md §9, §10): a request is published
 * to the fanout channel `/<db>.celery.pidbox`; replies go to the caller's reply list, `{<hostname>: <value>}`.
 */
import { MalformedMessageError } from '../common/errors.ts';
import { randomUUID } from 'node:crypto';
import { decodeBody, encodeBody, parseEnvelope } from './envelope.ts';

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  pattern: string | null;
  matcher: string | null;
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

function envelope(body: unknown, headers: Record<string, unknown>, exchange: string, routingKey: string, mode: number): string {
  return JSON.stringify({
    body: encodeBody(body), 'content-encoding': 'utf-8', 'content-type': 'application/json', headers,
    properties: { delivery_mode: mode, delivery_info: { exchange, routing_key: routingKey }, priority: 0,
      body_encoding: 'base64', delivery_tag: randomUUID() },
  });
}

export function encodeControlRequest(r: ControlRequest, timeoutSeconds: number): string {
  const expires = r.ticket ? Date.now() / 1000 + timeoutSeconds : 0;
  return envelope(r, { clock: 1, expires }, 'celery.pidbox', '', 2);
}

/** Throws MalformedMessageError when the envelope or its body cannot be read. */
export function decodeControlRequest(raw: string): ControlRequest {
  const body = decodeBody(parseEnvelope(raw)) as Partial<ControlRequest>;
  if (!body || typeof body !== 'object' || typeof body.method !== 'string') throw new MalformedMessageError('not a control request: its body has no method');
  return {
    method: body.method,
    arguments: body.arguments && typeof body.arguments === 'object' ? body.arguments : {},
    destination: Array.isArray(body.destination) ? body.destination.map(String) : null,
    pattern: typeof body.pattern === 'string' ? body.pattern : null,
    matcher: typeof body.matcher === 'string' ? body.matcher : null,
    ticket: typeof body.ticket === 'string' ? body.ticket : undefined,
    reply_to: body.reply_to && typeof body.reply_to === 'object' ? body.reply_to : undefined,
  };
}

export function encodeControlReply(hostname: string, ticket: string, routingKey: string, value: unknown): string {
  return envelope({ [hostname]: value }, { ticket, clock: 1 }, 'reply.celery.pidbox', routingKey, 1);
}

/** One reply: `{hostname: value}` plus the ticket it answers. */
export function decodeControlReply(raw: string): { ticket: string | null; replies: Record<string, unknown> } {
  const env = parseEnvelope(raw);
  const body = decodeBody(env);
  return { ticket: typeof env.headers.ticket === 'string' ? env.headers.ticket : null,
    replies: body && typeof body === 'object' ? body as Record<string, unknown> : {} };
}

/** `utcoffset` as Celery computes it: hours, positive west of UTC (Python's `time.timezone // 3600`). */
function utcoffset(): number {
  return Math.floor(new Date().getTimezoneOffset() / 60);
}

/**
 * One event's body as Celery's EventDispatcher builds it: `hostname`, `utcoffset`, `pid`, `clock` (the sender's
 * logical clock, increasing), `timestamp` (Unix seconds) and `type`, then the event's own fields.
 */
export function eventBody(type: string, hostname: string, fields: Record<string, unknown>, clock = 1): Record<string, unknown> {
  return { hostname, utcoffset: utcoffset(), pid: process.pid, clock, timestamp: Date.now() / 1000, type, ...fields };
}

/** An event in Celery's envelope (worker-online/-heartbeat/-offline, task-sent); routing key `worker.heartbeat`, …. */
export function encodeEvent(type: string, hostname: string, fields: Record<string, unknown>, clock = 1): { routingKey: string; raw: string } {
  const routingKey = type.replace(/-/g, '.');
  return { routingKey, raw: envelope(eventBody(type, hostname, fields, clock), { hostname }, 'celeryev', routingKey, 1) };
}

/** Events of one group sent together, as a Python worker sends its task events: routing key `task.multi`, a list body. */
export function encodeEventBatch(group: string, hostname: string, bodies: Record<string, unknown>[]): { routingKey: string; raw: string } {
  const routingKey = `${group}.multi`;
  return { routingKey, raw: envelope(bodies, { hostname }, 'celeryev', routingKey, 1) };
}
