/**
 * Task messages: protocol 2 encoding shaped like a Python client's, and a validating decoder for protocol 2 and 1
 * (CELERY-WIRE.md §2.3, §2.4, §2.6).
 *
 * Invariants:
 * - encodeTaskMessage always writes every §2.3 header (nulls included), a 3-element base64 body with all four embed
 *   keys, delivery_tag and delivery_info, because a Python worker crashes without them (s12).
 * - decodeTaskMessage never invents routing: a message without delivery_tag/delivery_info is malformed, and the
 *   caller (which knows the queue) decides what to do with it.
 * - Once an id could be read, every MalformedMessageError carries it, so a FAILURE can be stored under it.
 * - Protocol is chosen exactly as the Python worker does: `task` present in headers => 2, else the body must be a
 *   protocol 1 object naming a task.
 */
import { randomUUID } from 'node:crypto';
import { CeleriacError, ErrorCode, MalformedMessageError } from '../shared/errors.ts';
import { formatCeleryDate, parseCeleryDate } from './dates.ts';
import { decodeBody, encodeBody, isPlainObject, parseEnvelope, type EnvelopeProperties } from './envelope.ts';
import { argsRepr, pyRepr } from './repr.ts';

export { formatCeleryDate, parseCeleryDate };

export interface Signature {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  [k: string]: unknown;
}

export interface Embed {
  callbacks: Signature[] | null;
  errbacks: Signature[] | null;
  chain: Signature[] | null;
  chord: Signature | null;
}

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
  argsrepr: string | null; kwargsrepr: string | null;
}

export interface NewTaskMessage {
  task: string; id: string; args: unknown[]; kwargs: Record<string, unknown>; embed?: Partial<Embed>;
  /** Becomes delivery_info {exchange: '', routing_key: queue}. */
  queue: string;
  /** properties.priority (default 0), not clamped: the band is the publisher's business (§8). */
  priority?: number | null;
  eta?: Date | null; expires?: Date | null; retries?: number;
  /** Default: id. */
  rootId?: string | null;
  parentId?: string | null; group?: string | null; groupIndex?: number | null;
  ignoreResult?: boolean; timelimit?: [number | null, number | null]; shadow?: string | null;
  /** Producer node name, e.g. "gen1234@host". */
  origin: string;
  /** Extra headers merged last, like apply_async(headers=...); they cannot replace `task` or `id`. */
  headers?: Record<string, unknown>;
  replyTo?: string;
  /** Default: a fresh UUID. */
  deliveryTag?: string;
  argsrepr?: string; kwargsrepr?: string;
}

function badOption(message: string): CeleriacError {
  return new CeleriacError(ErrorCode.BadOption, message);
}

export function encodeTaskMessage(m: NewTaskMessage): string {
  if (typeof m.task !== 'string' || m.task === '') throw badOption('task name must be a non-empty string');
  if (typeof m.id !== 'string' || m.id === '') throw badOption('task id must be a non-empty string');
  if (typeof m.queue !== 'string' || m.queue === '') throw badOption('queue must be a non-empty string');
  if (!Array.isArray(m.args)) throw badOption(`args of ${m.task} must be an array`);
  if (!isPlainObject(m.kwargs)) throw badOption(`kwargs of ${m.task} must be a plain object`);

  const headers: Record<string, unknown> = {
    lang: 'js',
    task: m.task,
    id: m.id,
    shadow: m.shadow ?? null,
    eta: m.eta ? formatCeleryDate(m.eta) : null,
    expires: m.expires ? formatCeleryDate(m.expires) : null,
    group: m.group ?? null,
    group_index: m.groupIndex ?? null,
    retries: m.retries ?? 0,
    timelimit: m.timelimit ?? [null, null],
    root_id: m.rootId || m.id,
    parent_id: m.parentId ?? null,
    argsrepr: m.argsrepr ?? argsRepr(m.args),
    kwargsrepr: m.kwargsrepr ?? pyRepr(m.kwargs),
    origin: m.origin,
    ignore_result: m.ignoreResult ?? false,
    ...m.headers,
  };
  // Python lets extra headers override anything; a stray `id`/`task` would desynchronise result keys, so not here.
  headers.task = m.task;
  headers.id = m.id;
  const embed = {
    callbacks: m.embed?.callbacks ?? null,
    errbacks: m.embed?.errbacks ?? null,
    chain: m.embed?.chain ?? null,
    chord: m.embed?.chord ?? null,
  };
  const properties: EnvelopeProperties = {
    correlation_id: m.id,
    reply_to: m.replyTo ?? '',
    delivery_mode: 2,
  };
  if (m.expires) {
    // kombu's TTL property: milliseconds from now as a string, never negative (Celery clamps past expiries to 0).
    properties.expiration = String(Math.max(0, Math.trunc(m.expires.getTime() - Date.now())));
  }
  properties.delivery_info = { exchange: '', routing_key: m.queue };
  properties.priority = m.priority ?? 0;
  properties.body_encoding = 'base64';
  properties.delivery_tag = m.deliveryTag ?? randomUUID();
  return JSON.stringify({
    body: encodeBody([m.args, m.kwargs, embed]),
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers,
    properties,
  });
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

function readSignatures(v: unknown, key: string, id: string): Signature[] | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v) && v.every(isPlainObject)) return v as Signature[];
  throw new MalformedMessageError(`embed.${key} must be a list of signatures or null`, id);
}

function readEmbed(v: unknown, id: string): Embed {
  if (v === null || v === undefined) return { callbacks: null, errbacks: null, chain: null, chord: null };
  if (!isPlainObject(v)) throw new MalformedMessageError('embed (third body element) must be an object', id);
  if (v.chord !== null && v.chord !== undefined && !isPlainObject(v.chord)) {
    throw new MalformedMessageError('embed.chord must be a signature or null', id);
  }
  return {
    callbacks: readSignatures(v.callbacks, 'callbacks', id),
    errbacks: readSignatures(v.errbacks, 'errbacks', id),
    chain: readSignatures(v.chain, 'chain', id),
    chord: (v.chord ?? null) as Signature | null,
  };
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
    argsrepr: optText(src.argsrepr),
    kwargsrepr: optText(src.kwargsrepr),
  };
}
