/**
 * Producer side of task protocol 2: the envelope string a Python client would LPUSH (docs/wire-format.md §3, §12.1).
 *
 * Invariants:
 * - Every §3.3 header is written (nulls included), in Python's order; extra headers come last and cannot replace
 *   `task` or `id`.
 * - The body is base64 of [args, kwargs, embed] with all four embed keys; properties carry delivery_tag and
 *   delivery_info, because a Python worker crashes without them (s12).
 * - eta/expires are aware UTC ("+00:00"); `expiration` is set only with expires, as kombu does.
 * - Nothing here picks the priority band list or talks to Redis: that is the broker's job.
 */
import { randomUUID } from 'node:crypto';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { formatCeleryDate } from './dates.ts';
import type { Embed } from './embed.ts';
import { encodeBody, isPlainObject, RECOVERIES_HEADER, type EnvelopeProperties } from './envelope.ts';
import { argsRepr, pyRepr } from './repr.ts';

export interface NewTaskMessage {
  task: string; id: string; args: unknown[]; kwargs: Record<string, unknown>; embed?: Partial<Embed>;
  /** Becomes delivery_info {exchange: '', routing_key: queue}. */
  queue: string;
  /** properties.priority (default 0), not clamped: the band is the publisher's business (§4.1). */
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

/**
 * The headers encodeTaskMessage writes itself, plus the redelivery marks (kombu's `redelivered`, celeriac's recovery
 * count), which belong to one delivery and are not carried into a derived message; any other header is the caller's.
 */
export const STANDARD_HEADERS: ReadonlySet<string> = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit', 'root_id',
  'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'redelivered', RECOVERIES_HEADER,
]);

function badOption(message: string): CeleriacError {
  return new CeleriacError(ErrorCode.BadOption, message);
}

export function encodeTaskMessage(m: NewTaskMessage): string {
  if (typeof m.task !== 'string' || m.task === '') throw badOption('task name must be a non-empty string');
  if (typeof m.id !== 'string' || m.id === '') throw badOption('task id must be a non-empty string');
  if (typeof m.queue !== 'string' || m.queue === '') throw badOption('queue must be a non-empty string');
  if (!Array.isArray(m.args)) throw badOption(`args of ${m.task} must be an array`);
  if (!isPlainObject(m.kwargs)) throw badOption(`kwargs of ${m.task} must be a plain object`);
  for (const [name, d] of [['eta', m.eta], ['expires', m.expires]] as const) {
    if (d && (!(d instanceof Date) || Number.isNaN(d.getTime()))) throw badOption(`${name} of ${m.task} is not a valid Date`);
  }

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
