/**
 * kombu's Redis layout, shared with Python Celery (docs/wire-format.md §2.1, §4.1), plus celeriac's own keys.
 *
 *   <queue>, <queue>\x06\x163, \x06\x166, \x06\x169   lists: priority bands 0–2, 3–5, 6–8, 9+ (LPUSH in, RPOP out)
 *   _kombu.binding.<exchange>                       set: `<routing_key>\x06\x16<pattern>\x06\x16<queue>`
 *   unacked / unacked_index                         hash / zset: reserved messages and when they were reserved
 *   celeriac.leases                                 zset: tag -> lease expiry of a celeriac worker's reservation
 *   celeriac.deadletter                             list: JSON {reason, queue, raw, at} of messages set aside
 *   celeriac.eta                                    zset: "<list key>\n<raw>" -> due time (ms): parked ETA messages
 *   celeriac.workers                                zset: live celeriac worker instance -> alive-until (ms)
 *   celeriac.revoked                                zset: revoked task id -> expires at (ms), pruned on write
 *   celeriac.beat.<app>.lock / .state               string / hash: beat leader lock; entry -> last run (ms)
 *   celeriac.wake.<db>.<queue>                      pub/sub: "this queue may have work" (empty messages)
 * Remote control and events (Celery's pidbox and celeryev, docs/wire-format.md §9, §10; control.ts):
 *   /<db>.celery.pidbox                             pub/sub: control requests to every worker
 *   _kombu.binding.reply.celery.pidbox              set: `<oid>\x06\x16\x06\x16<oid>.reply.celery.pidbox`
 *   <oid>.reply.celery.pidbox                       list: replies to one caller
 *   /<db>.celeryev/<routing key>                    pub/sub: worker events
 * The dead-letter list's name is a setting (deadLetterQueue, `celeriac.deadletter` by default: app/config.ts).
 */
import { PRIORITY_BANDS, priorityBand } from '../envelope.ts';

export const SEP = '\x06\x16';

export const UNACKED = 'unacked';
export const UNACKED_INDEX = 'unacked_index';
export const LEASES = 'celeriac.leases';
export const ETA = 'celeriac.eta';
export const WORKERS = 'celeriac.workers';
export const REVOKED = 'celeriac.revoked';
/** A rate-limited task's next free start (ms, Redis clock): `celeriac.rate.<task name>` (stores/rate.ts). */
export const rateKey = (task: string): string => `celeriac.rate.${task}`;

/** The wake-up channel of a queue is this prefix + the queue name (the Lua scripts take the prefix). */
export function wakePrefix(db: number): string {
  return `celeriac.wake.${db}.`;
}

/** The exchange whose bindings name each waiting control caller's reply list. */
export const REPLY_EXCHANGE = 'reply.celery.pidbox';

export function pidboxChannel(db: number): string {
  return `/${db}.celery.pidbox`;
}

export function replyQueue(replyKey: string): string {
  return `${replyKey}.${REPLY_EXCHANGE}`;
}

export function eventChannel(db: number, routingKey: string): string {
  return `/${db}.celeryev/${routingKey}`;
}

export function beatKeys(app: string): { lock: string; state: string } {
  return { lock: `celeriac.beat.${app}.lock`, state: `celeriac.beat.${app}.state` };
}

export function parkedMember(queue: string, priority: number, raw: string): string {
  return `${queueListKey(queue, priority)}\n${raw}`;
}

export function bandKey(queue: string, step: number): string {
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

export function queueListKey(queue: string, priority: number | null | undefined): string {
  return bandKey(queue, priorityBand(priority));
}

export function allBandKeys(queue: string): string[] {
  return PRIORITY_BANDS.map((s) => bandKey(queue, s));
}

/** Band-major order: every queue's plain list, then every queue's band 3, …: BRPOP-style priority across queues. */
export function bandMajorKeys(queues: string[]): { keys: string[]; names: string[] } {
  const keys: string[] = [];
  const names: string[] = [];
  for (const step of PRIORITY_BANDS) {
    for (const q of queues) {
      keys.push(bandKey(q, step));
      names.push(q);
    }
  }
  return { keys, names };
}

export function bindingKey(exchange: string): string {
  return `_kombu.binding.${exchange}`;
}

export function bindingMember(routingKey: string, queue: string, pattern = ''): string {
  return `${routingKey}${SEP}${pattern}${SEP}${queue}`;
}
