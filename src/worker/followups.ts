/**
 * What a finished task publishes next, as a Python worker does (docs/wire-format.md §8): the next link of a chain,
 * link callbacks, errbacks, and the body of a chord when this task completed its header.
 */
import type { Signature, TaskMessage } from '../protocol/index.ts';
import type { Celeriac } from '../app/app.ts';
import type { ResultBackend } from '../backend/backend.ts';
import type { Broker } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import { planCanvas, publishPlan, type CanvasPlan, type ResultNode } from '../task/canvas.ts';
import { taskRecord } from './records.ts';

function opt<T>(sig: Signature, key: string): T | undefined {
  const v = sig.options?.[key];
  return v === null ? undefined : (v as T);
}

/** A result as Celery stores it in `children`: `[[id, parent], null]` for a task, `[[id, parent], [members]]` for a group. */
function asTuple(node: ResultNode): unknown {
  return [[node.id, null], node.kind === 'group' ? (node.results ?? []).map(asTuple) : null];
}

function lineage(msg: Pick<TaskMessage, 'id' | 'rootId'>): Record<string, unknown> {
  return { parent_id: msg.id, root_id: msg.rootId ?? msg.id };
}

function merge(plans: CanvasPlan[]): CanvasPlan {
  return { messages: plans.flatMap((p) => p.messages), chordSizes: plans.flatMap((p) => p.chordSizes) };
}

const NOTHING: { plan: CanvasPlan; children: unknown[] } = Object.freeze({
  plan: Object.freeze({ messages: [], chordSizes: [] }), children: [],
}) as never;

/**
 * After a success: the next link of the chain (applied as Celery's worker does, whatever it is: a task, a group, a
 * chord, with every option it carries) and the link callbacks, with the parent's value as their first argument.
 * Returns what to publish and the `children` tuples for the task's own record.
 */
export function successFollowups(app: Celeriac, msg: TaskMessage, value: unknown): { plan: CanvasPlan; children: unknown[] } {
  if (!msg.embed.chain?.length && !msg.embed.callbacks?.length) return NOTHING;
  const planned: Array<{ plan: CanvasPlan; result: ResultNode }> = [];
  const chain = msg.embed.chain;
  if (chain && chain.length > 0) {
    const next = chain[chain.length - 1];
    planned.push(planCanvas(app, next, { args: [value], options: { ...lineage(msg), chain: chain.slice(0, -1) } }));
  }
  for (const cb of msg.embed.callbacks ?? []) planned.push(planCanvas(app, cb, { args: [value], options: lineage(msg) }));
  return { plan: merge(planned.map((p) => p.plan)), children: planned.map((p) => asTuple(p.result)) };
}

/** The failed task, as far as its errbacks need it. */
type ErrbackSource = Pick<TaskMessage, 'id' | 'task' | 'args' | 'kwargs' | 'retries' | 'group' | 'groupIndex' | 'rootId' | 'parentId'>
  & { embed: { errbacks: Signature[] | null } };

/** What Celery hands an errback that takes (request, exc, traceback): the failed task's request. */
function errbackRequest(msg: ErrbackSource): Record<string, unknown> {
  return {
    id: msg.id, task: msg.task, args: msg.args, kwargs: msg.kwargs, retries: msg.retries, group: msg.group,
    group_index: msg.groupIndex, root_id: msg.rootId, parent_id: msg.parentId,
  };
}

/**
 * Errbacks, by Celery's rule: one registered here whose handler takes more than one parameter is called in this
 * process as `(request, exc, traceback)`; every other one is published, as a group, with the failed task's id as
 * its argument (a task not registered here may take either form: its worker decides).
 */
export async function runErrbacks(app: Celeriac, msg: ErrbackSource, err: Error, traceback: string | null, log: Logger,
  broker: () => Promise<Broker>, backend: () => Promise<ResultBackend>): Promise<void> {
  const published: Signature[] = [];
  for (const eb of msg.embed.errbacks ?? []) {
    const task = app.tasks.get(eb.task);
    if (task && task.handler.length > 1) {
      const args = [errbackRequest(msg), err, traceback, ...(eb.args ?? [])];
      try {
        await task.handler.apply(undefined as never, args);
      } catch (e) {
        log.error(`Errback ${eb.task} of ${msg.task}[${msg.id}] raised: ${(e as Error)?.message ?? String(e)}`);
      }
    } else {
      published.push(eb);
    }
  }
  if (published.length === 0) return;
  const group: Signature = {
    task: 'celery.group', args: [], kwargs: { tasks: published }, options: {}, subtask_type: 'group', immutable: false,
  };
  await publishPlan(planCanvas(app, group, { args: [msg.id], options: lineage(msg) }).plan, broker, backend);
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
  result: unknown, log: Logger): Promise<void> {
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
    const chordError = { exc_type: 'ChordError', exc_message: [reason], exc_module: 'celery.exceptions' };
    // Celery's chord_error_from_stack: the body's errbacks run for a body that never ran, then it is FAILURE
    await runErrbacks(app, {
      id: bodyId, task: body.task, args: body.args ?? [], kwargs: body.kwargs ?? {}, retries: 0, group: opt<string>(body, 'group_id') ?? null,
      groupIndex: opt<number>(body, 'group_index') ?? null, rootId: msg.rootId ?? msg.id, parentId: msg.id,
      embed: { errbacks: Array.isArray(body.options?.link_error) ? (body.options.link_error as Signature[]) : null },
    }, Object.assign(new Error(reason), { name: 'ChordError' }), null, log, () => app.broker(), () => Promise.resolve(backend));
    await backend.store([taskRecord({ id: bodyId }, 'FAILURE', chordError)]);
    return;
  }
  const { plan } = planCanvas(app, body, {
    args: [parts.map(([, , r]) => r)],
    options: {
      task_id: bodyId,
      parent_id: opt<string>(body, 'parent_id') ?? msg.id,
      root_id: opt<string>(body, 'root_id') ?? msg.rootId ?? msg.id,
    },
  });
  await publishPlan(plan, () => app.broker(), () => Promise.resolve(backend));
  await backend.chordCleanup(msg.group);
}
