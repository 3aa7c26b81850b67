/**
 * Consumer side of the task protocol: a validating decoder for protocol 2 and protocol 1 messages
 * (docs/wire-format.md §3.3, §3.4, §3.6), plus the public home of the task-message API.
 *
 * Invariants:
 * - decodeTaskMessage never invents routing: a message without delivery_tag/delivery_info is malformed, and the
 *   caller (which knows the queue) decides what to do with it.
 * - Once an id could be read, every MalformedMessageError carries it, so a FAILURE can be stored under it.
 * - Protocol is chosen exactly as the Python worker does: `task` present in headers => 2, else the body must be a
 *   protocol 1 object naming a task (converted like Celery's proto1_to_proto2).
 */
import { MalformedMessageError } from '../common/errors.ts';
import { formatCeleryDate, parseCeleryDate } from './dates.ts';
import { readEmbed, type Embed, type Signature } from './embed.ts';
import { decodeBody, isPlainObject, parseEnvelope, recoveriesOf, type EnvelopeProperties } from './envelope.ts';
import { encodeTaskMessage, type NewTaskMessage } from './task-encode.ts';

export { encodeTaskMessage, formatCeleryDate, parseCeleryDate };
export type { Embed, NewTaskMessage, Signature };

export interface TaskMessage {
  id: string; task: string; args: unknown[]; kwargs: Record<string, unknown>; embed: Embed;
  eta: Date | null; expires: Date | null; retries: number; rootId: string | null; parentId: string | null;
  group: string | null; groupIndex: number | null; ignoreResult: boolean;
  timelimit: [number | null, number | null]; shadow: string | null; origin: string | null;
  protocol: 1 | 2;
  /** Raw v2 headers as received (for a fresh v1 message: {}). */
  headers: Record<string, unknown>;
  properties: EnvelopeProperties;
  deliveryTag: string | null; exchange: string; routingKey: string; priority: number; redelivered: boolean;
  /** Times the message was recovered from a holder whose lease lapsed (celeriac's count; 0 from other producers). */
  recoveries: number;
  argsrepr: string | null; kwargsrepr: string | null;
}

/** Non-empty string or null: Python tests these ids for truthiness, so '' means "none" on both sides. */
function optId(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function optText(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** Python truthiness for the JSON values a header can hold. */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

function readDate(v: unknown, field: string, id: string): Date | null {
  try {
    return parseCeleryDate(v);
  } catch (err) {
    throw new MalformedMessageError(`${field}: ${(err as MalformedMessageError).reason}`, id);
  }
}

function readTimelimit(v: unknown, id: string): [number | null, number | null] {
  if (v === null || v === undefined) return [null, null];
  const ok = (x: unknown): x is number | null => x === null || (typeof x === 'number' && Number.isFinite(x) && x >= 0);
  if (Array.isArray(v) && v.length === 2 && ok(v[0]) && ok(v[1])) return [v[0], v[1]];
  throw new MalformedMessageError(`timelimit must be [hard, soft] seconds or nulls, got ${JSON.stringify(v)}`, id);
}

interface Payload { src: Record<string, unknown>; args: unknown; kwargs: unknown; embed: unknown; protocol: 1 | 2 }

/** Where each field lives: v2 splits headers and body, v1 puts everything in one body object. */
function locate(headers: Record<string, unknown>, body: unknown, id: string | null): Payload {
  if ('task' in headers) {
    if (!Array.isArray(body)) throw new MalformedMessageError('protocol 2 body must be [args, kwargs, embed]', id);
    if (body.length !== 3) {
      throw new MalformedMessageError(
        `protocol 2 body must have 3 elements [args, kwargs, embed], got ${body.length}` +
          (body.length === 2 ? ' (the embed is missing)' : ''),
        id,
      );
    }
    return { src: headers, args: body[0], kwargs: body[1], embed: body[2], protocol: 2 };
  }
  if (!isPlainObject(body) || !('task' in body)) {
    const bodyId = isPlainObject(body) ? optId(body.id) : null;
    throw new MalformedMessageError('no task name: neither headers.task (protocol 2) nor a protocol 1 body', id ?? bodyId);
  }
  const src = { ...body, group: 'taskset' in body && body.taskset != null ? body.taskset : body.group };
  const embed = { callbacks: body.callbacks, errbacks: body.errbacks, chain: null, chord: body.chord };
  return { src, args: body.args ?? [], kwargs: body.kwargs ?? {}, embed, protocol: 1 };
}

export function decodeTaskMessage(raw: string): TaskMessage {
  const env = parseEnvelope(raw);
  const body = decodeBody(env);
  const headers = env.headers;
  const { src, args, kwargs, embed, protocol } = locate(headers, body, optId(headers.id));

  const id = optId(src.id);
  if (id === null) throw new MalformedMessageError('task id must be a non-empty string');
  if (typeof src.task !== 'string' || src.task === '') {
    throw new MalformedMessageError('task name must be a non-empty string', id);
  }
  if (!Array.isArray(args)) throw new MalformedMessageError('args must be an array', id);
  if (!isPlainObject(kwargs)) throw new MalformedMessageError('kwargs must be an object', id);

  const props = env.properties;
  if (typeof props.delivery_tag !== 'string' || props.delivery_tag === '') {
    throw new MalformedMessageError('properties.delivery_tag is missing', id);
  }
  const info: unknown = props.delivery_info;
  if (!isPlainObject(info)) throw new MalformedMessageError('properties.delivery_info is missing', id);
  if (typeof info.exchange !== 'string' || typeof info.routing_key !== 'string') {
    throw new MalformedMessageError('properties.delivery_info needs string exchange and routing_key', id);
  }

  const retries = src.retries ?? 0;
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) {
    throw new MalformedMessageError(`retries must be a non-negative integer, got ${JSON.stringify(retries)}`, id);
  }
  const groupIndex = src.group_index;

  return {
    id,
    task: src.task,
    args,
    kwargs,
    embed: readEmbed(embed, id),
    eta: readDate(src.eta, 'eta', id),
    expires: readDate(src.expires, 'expires', id),
    retries,
    rootId: optId(src.root_id),
    parentId: optId(src.parent_id),
    group: optId(src.group),
    groupIndex: typeof groupIndex === 'number' && Number.isInteger(groupIndex) ? groupIndex : null,
    ignoreResult: truthy(src.ignore_result),
    timelimit: readTimelimit(src.timelimit, id),
    shadow: optId(src.shadow),
    origin: optText(src.origin),
    protocol,
    headers,
    properties: props,
    deliveryTag: props.delivery_tag,
    exchange: info.exchange,
    routingKey: info.routing_key,
    priority: typeof props.priority === 'number' && Number.isFinite(props.priority) ? props.priority : 0,
    redelivered: headers.redelivered === true || info.redelivered === true,
    recoveries: recoveriesOf(headers),
    argsrepr: optText(src.argsrepr),
    kwargsrepr: optText(src.kwargsrepr),
  };
}
