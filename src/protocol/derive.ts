/**
 * Messages derived from a received one, as a Python worker derives them. A retry (Celery's `Task.retry`) is the same
 * task, id, arguments and embed (chain, callbacks, errbacks, chord) with one more retry, an ETA, the retried task as
 * its parent, and every header the caller added kept; only the standard headers are written anew.
 */
import type { TaskMessage } from './task-message.ts';
import { STANDARD_HEADERS, type NewTaskMessage } from './task-encode.ts';

/** The headers of `headers` that are not protocol headers (apply_async(headers=…), tracing ids, …). */
export function extraHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) if (!STANDARD_HEADERS.has(k)) extra[k] = v;
  return extra;
}

export function retryMessage(msg: TaskMessage, o: { eta: Date; queue: string }): Omit<NewTaskMessage, 'origin'> {
  return {
    task: msg.task, id: msg.id, args: msg.args, kwargs: msg.kwargs, embed: msg.embed, queue: o.queue,
    priority: msg.priority, eta: o.eta, expires: msg.expires, retries: msg.retries + 1,
    rootId: msg.rootId ?? msg.id, parentId: msg.id, group: msg.group, groupIndex: msg.groupIndex,
    ignoreResult: msg.ignoreResult, timelimit: msg.timelimit, shadow: msg.shadow, headers: extraHeaders(msg.headers),
  };
}
