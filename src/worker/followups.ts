/**
 * What a finished task publishes next, as a Python worker does (docs/wire-format.md §8): the next link of a chain,
 * link callbacks, errbacks, and the body of a chord when this task completed its header.
 */
import { uuid } from '../common/ids.ts';
import type { Signature, TaskMessage } from '../protocol/index.ts';
import type { Celeriac, PreparedMessage } from '../app/app.ts';
import type { ResultBackend } from '../backend/backend.ts';
import { taskRecord } from './records.ts';

function opt<T>(sig: Signature, key: string): T | undefined {
  const v = sig.options?.[key];
  return v === null ? undefined : (v as T);
}

/** A signature to a message; the parent value is prepended to its args unless the signature is immutable. */
export function messageFromSignature(app: Celeriac, sig: Signature, parent: TaskMessage, prepend: unknown[],
  extra: { chain?: Signature[]; group?: string | null; rootId?: string | null; parentId?: string | null } = {}): PreparedMessage {
  const args = sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])];
  return app.prepareMessage(sig.task, args, sig.kwargs ?? {}, {
    taskId: opt<string>(sig, 'task_id') ?? uuid(),
    queue: opt<string>(sig, 'queue'),
    priority: opt<number>(sig, 'priority'),
    parentId: extra.parentId ?? parent.id,
    rootId: extra.rootId ?? parent.rootId ?? parent.id,
    group: extra.group ?? opt<string>(sig, 'group_id') ?? null,
    groupIndex: opt<number>(sig, 'group_index') ?? null,
  }, {}, { chain: extra.chain ?? null, chord: (opt<Signature>(sig, 'chord') ?? null) as Signature | null });
}

/** Messages to publish after a success, and the `children` tuples for the task's own record. */
const NOTHING: { messages: PreparedMessage[]; children: unknown[] } = Object.freeze({ messages: [], children: [] }) as never;

export function successFollowups(app: Celeriac, msg: TaskMessage, value: unknown): { messages: PreparedMessage[]; children: unknown[] } {
  if (!msg.embed.chain?.length && !msg.embed.callbacks?.length) return NOTHING;
  const messages: PreparedMessage[] = [];
  const chain = msg.embed.chain;
  if (chain && chain.length > 0) {
    const next = chain[chain.length - 1];
    messages.push(messageFromSignature(app, next, msg, [value], { chain: chain.slice(0, -1) }));
  }
  for (const cb of msg.embed.callbacks ?? []) messages.push(messageFromSignature(app, cb, msg, [value]));
  return { messages, children: messages.map((m) => [[m.id, null], null]) };
}

/** Errbacks are published with the failed task's id as their argument (Celery's published-errback form). */
export function failureFollowups(app: Celeriac, msg: TaskMessage): PreparedMessage[] {
  return (msg.embed.errbacks ?? []).map((eb) =>
    messageFromSignature(app, eb, msg, [msg.id], { group: uuid(), parentId: msg.id, rootId: msg.id }));
}

/** Ids of chain links that will never run because this link failed: Celery marks them FAILURE too. */
export function pendingChainIds(msg: TaskMessage): string[] {
  return (msg.embed.chain ?? []).map((s) => opt<string>(s, 'task_id')).filter((id): id is string => !!id);
}

function pyRepr(excType: string, message: unknown): string {
  return `${excType}(${JSON.stringify(String(message ?? '')).replace(/^"|"$/g, "'")})`;
}

/**
 * Chord join (§8.5): after this header part's result is stored, count it; the part that completes the header
 * publishes the body with the ordered results, or stores ChordError on the body when a part failed.
 */
export async function joinChord(app: Celeriac, backend: ResultBackend, msg: TaskMessage, state: string,
  result: unknown): Promise<void> {
  const body = msg.embed.chord;
  if (!body || !msg.group) return;
  const parts = await backend.chordPartDone({ groupId: msg.group, index: msg.groupIndex, taskId: msg.id, state, result });
  if (!parts) return;
  // a fixed id when the body has none: a chord completed twice (at-least-once) then still has one body result
  const bodyId = opt<string>(body, 'task_id') ?? `${msg.group}.body`;
  const failed = parts.find(([, s]) => s !== 'SUCCESS');
  if (failed) {
    const [tid, , exc] = failed;
    const info = (exc ?? {}) as { exc_type?: string; exc_message?: unknown[] };
    const reason = `Dependency ${tid} raised ${pyRepr(info.exc_type ?? 'Exception', info.exc_message?.[0])}`;
    await backend.store([taskRecord({ id: bodyId }, 'FAILURE',
      { exc_type: 'ChordError', exc_message: [reason], exc_module: 'celery.exceptions' })]);
    return;
  }
  const next = messageFromSignature(app, { ...body, options: { ...body.options, task_id: bodyId } }, msg,
    [parts.map(([, , r]) => r)], {
      parentId: opt<string>(body, 'parent_id') ?? msg.id,
      rootId: opt<string>(body, 'root_id') ?? msg.rootId ?? msg.id,
    });
  await (await app.broker()).publish([next]);
  await backend.chordCleanup(msg.group);
}
