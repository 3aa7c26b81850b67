/**
 * Applying a canvas (a signature, chain, group, chord, starmap/map, chunks) the way Celery 5 does, on the wire form
 * of signatures (docs/wire-format.md §8): the same code serves a client calling `chain(...).applyAsync()` and a
 * worker publishing the next link of a chain, a callback, an errback or a chord body it received from anyone.
 *
 * Applying is two steps: `planCanvas` freezes every id (each task id, group id and chord body id is decided up front
 * and written into the signatures, so the handles returned to the caller match what runs later, wherever it runs)
 * and builds the messages; `publishPlan` records chord sizes, then publishes all messages in one round trip.
 *
 * Celery's rules kept here: a chain's partial arguments go to its first step; `group | task` inside a chain becomes
 * a chord; nested chains are spliced and nested groups unrolled; a chain's `link_error` goes to every step and its
 * `link` to the last; the chain's remaining steps travel reversed in the message's `chain` field; a chord's header
 * is a group whose parts carry the body in `chord`, and the header size is counted as Celery's `_descend` does;
 * options given at apply time override the signature's own.
 */
import { uuid } from '../common/ids.ts';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import type { Embed, Signature as WireSignature } from '../protocol/index.ts';
import type { Broker, OutgoingMessage } from '../broker/broker.ts';
import type { ResultBackend } from '../backend/backend.ts';
import type { ApplyOptions, TaskOptions } from './options.ts';

export type { WireSignature };

/** A built message, ready to publish. */
export type PreparedMessage = OutgoingMessage & { id: string };

/** What applying a canvas needs from its app. */
export interface CanvasProducer {
  prepareMessage(name: string, args: unknown[], kwargs: Record<string, unknown>, options: ApplyOptions,
    defaults?: TaskOptions, embed?: Partial<Embed>): PreparedMessage;
  /** The options a task registered in this app was defined with (its queue, priority…), if it is registered. */
  taskDefaults(name: string): TaskOptions | undefined;
}

/** The result shape of an applied canvas: one task's id, or a group's id and its members, with `parent` up a chain. */
export interface ResultNode {
  kind: 'task' | 'group';
  id: string;
  results?: ResultNode[];
  parent?: ResultNode | null;
}

export interface CanvasPlan {
  messages: PreparedMessage[];
  /** Chord header sizes to record before the header parts are published: [group id, size]. */
  chordSizes: Array<[string, number]>;
}

/** Apply-time arguments: partial args/kwargs, and options in Celery's wire names that override the signature's. */
export interface ApplyContext {
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A signature in its wire form, with every field present; E_BAD_OPTION when it is not one. */
export function wireSignature(v: unknown, where = 'signature'): WireSignature {
  if (!isObject(v) || typeof v.task !== 'string') {
    throw new CeleriacError(ErrorCode.BadOption, `${where} is not a signature ({task, args, kwargs, options}): ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return {
    ...v,
    task: v.task,
    args: Array.isArray(v.args) ? v.args : [],
    kwargs: isObject(v.kwargs) ? v.kwargs : {},
    options: isObject(v.options) ? { ...v.options } : {},
    subtask_type: typeof v.subtask_type === 'string' ? v.subtask_type : null,
    immutable: v.immutable === true,
  };
}

/** A deep copy, so that freezing never changes a signature the caller holds (Celery clones before freezing). */
function copy(sig: WireSignature): WireSignature {
  return wireSignature(structuredClone(sig));
}

function list(v: unknown): WireSignature[] {
  if (v === null || v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((s, i) => wireSignature(s, `link [${i}]`));
}

function members(sig: WireSignature, key: 'tasks' | 'header'): WireSignature[] {
  const v = sig.kwargs[key];
  if (isObject(v) && (v as { subtask_type?: unknown }).subtask_type === 'group') return members(wireSignature(v), 'tasks');
  if (!Array.isArray(v)) throw new CeleriacError(ErrorCode.BadOption, `${sig.task}: kwargs.${key} must be a list of signatures`);
  return v.map((s, i) => wireSignature(s, `${sig.task} ${key} [${i}]`));
}

const kindOf = (sig: WireSignature): string => sig.subtask_type ?? (
  sig.task === 'celery.chain' ? 'chain' : sig.task === 'celery.group' ? 'group' : sig.task === 'celery.chord' ? 'chord' : 'task');

/** Groups inside groups are run in parallel as one group (Celery unrolls them). */
function unrollGroup(tasks: WireSignature[]): WireSignature[] {
  return tasks.flatMap((t) => (kindOf(t) === 'group' ? unrollGroup(members(t, 'tasks')) : [t]));
}

/** Chains inside chains are spliced into one. */
function spliceChain(tasks: WireSignature[]): WireSignature[] {
  return tasks.flatMap((t) => (kindOf(t) === 'chain' ? spliceChain(members(t, 'tasks')) : [t]));
}

export function chordSignature(header: WireSignature[] | WireSignature, body: WireSignature,
  options: Record<string, unknown> = {}): WireSignature {
  return {
    task: 'celery.chord', args: [], kwargs: { kwargs: {}, header, body }, options, subtask_type: 'chord', immutable: false,
    chord_size: null,
  };
}

/** How many completions a signature adds to a chord header it is part of (Celery's `_chord._descend`). */
export function chordCount(sig: WireSignature): number {
  switch (kindOf(sig)) {
    case 'group':
      return members(sig, 'tasks').reduce((n, t) => n + chordCount(t), 0);
    case 'chain': {
      const steps = members(sig, 'tasks');
      for (let i = steps.length - 1; i >= 0; i--) {
        const n = chordCount(steps[i]);
        if (n > 0) return n;
      }
      return 0;
    }
    case 'chord':
      return chordCount(wireSignature(sig.kwargs.body, 'chord body'));
    default:
      return 1;
  }
}

/** `chunks(task, it, n)` is a group of starmaps over `n`-sized slices of `it` (Celery's `chunks.group()`). */
function chunksToGroup(sig: WireSignature): WireSignature {
  const task = wireSignature(sig.kwargs.task, 'chunks task');
  const it = sig.kwargs.it;
  const n = Number(sig.kwargs.n);
  if (!Array.isArray(it) || !Number.isInteger(n) || n < 1) {
    throw new CeleriacError(ErrorCode.BadOption, `celery.chunks needs kwargs {task, it: [...], n >= 1}, got n=${String(sig.kwargs.n)}`);
  }
  const parts: WireSignature[] = [];
  for (let i = 0; i < it.length; i += n) parts.push(starmapSignature('celery.starmap', 'xstarmap', task, it.slice(i, i + n)));
  return { task: 'celery.group', args: [], kwargs: { tasks: parts }, options: { ...sig.options }, subtask_type: 'group', immutable: false };
}

export function starmapSignature(name: 'celery.starmap' | 'celery.map', type: 'xstarmap' | 'xmap', task: WireSignature,
  it: unknown[]): WireSignature {
  return { task: name, args: [], kwargs: { task, it }, options: {}, subtask_type: type, immutable: true, chord_size: null };
}

interface Freeze {
  taskId?: string;
  groupId?: string | null;
  groupIndex?: number | null;
  chord?: WireSignature | null;
}

function setIf(o: Record<string, unknown>, key: string, v: unknown): void {
  if (v !== undefined && v !== null) o[key] = v;
}

/**
 * Decide every id of `sig` (in place) and return its result shape. Ids already set are kept, so freezing twice, or
 * freezing what a client froze, changes nothing.
 */
function freeze(sig: WireSignature, f: Freeze = {}): ResultNode {
  const o = sig.options;
  switch (kindOf(sig)) {
    case 'chain': {
      const steps = prepareChain(sig);
      return freezeSteps(steps, f);
    }
    case 'group': {
      const gid = (o.task_id as string | undefined) ?? f.taskId ?? uuid();
      o.task_id = gid;
      setIf(o, 'group_id', f.groupId);
      const tasks = unrollGroup(members(sig, 'tasks'));
      sig.kwargs = { ...sig.kwargs, tasks };
      const results = tasks.map((t, i) => freeze(t, { groupId: gid, groupIndex: i, chord: f.chord }));
      return { kind: 'group', id: gid, results };
    }
    case 'chord': {
      const header = headerGroup(sig);
      const gid = (header.options.task_id as string | undefined) ?? uuid();
      header.options.task_id = gid;
      const body = wireSignature(sig.kwargs.body, 'chord body');
      const bodyNode = freeze(body, f);
      const tasks = unrollGroup(members(header, 'tasks'));
      const results = tasks.map((t, i) => freeze(t, { groupId: gid, groupIndex: i, chord: body }));
      header.kwargs = { ...header.kwargs, tasks };
      sig.kwargs = { ...sig.kwargs, header, body };
      let top = bodyNode;
      while (top.parent) top = top.parent;
      top.parent = { kind: 'group', id: gid, results };
      return bodyNode;
    }
    case 'chunks': {
      const g = chunksToGroup(sig);
      Object.assign(sig, g);
      return freeze(sig, f);
    }
    default: {
      const id = (o.task_id as string | undefined) ?? f.taskId ?? uuid();
      o.task_id = id;
      setIf(o, 'group_id', f.groupId);
      setIf(o, 'group_index', f.groupIndex);
      if (f.chord) o.chord = f.chord;
      return { kind: 'task', id };
    }
  }
}

/** A chord's header as a group signature (a frozen chord keeps its header group's id in it, as Celery's does). */
function headerGroup(sig: WireSignature): WireSignature {
  const h = sig.kwargs.header;
  if (isObject(h)) return wireSignature(h, 'chord header');
  return { task: 'celery.group', args: [], kwargs: { tasks: members(sig, 'header') }, options: {}, subtask_type: 'group', immutable: false };
}

/**
 * A chain's steps, spliced, with `group, next` turned into `chord(group, next)`, as Celery's prepare_steps does.
 * Idempotent: a prepared chain holds neither chains nor a group followed by a step.
 */
function prepareChain(sig: WireSignature): WireSignature[] {
  const steps = spliceChain(members(sig, 'tasks'));
  if (steps.length === 0) throw new CeleriacError(ErrorCode.BadOption, 'a chain needs at least one step');
  const out: WireSignature[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i];
    if (kindOf(step) === 'group' && out.length > 0) out.unshift(chordSignature(step, out.shift()!));
    else out.unshift(step);
  }
  sig.kwargs = { ...sig.kwargs, tasks: out };
  return out;
}

/** Freeze a chain's steps: the last carries the chain's own id, group and chord; each result's parent is the step before. */
function freezeSteps(steps: WireSignature[], f: Freeze): ResultNode {
  let prev: ResultNode | null = null;
  let node: ResultNode | null = null;
  steps.forEach((step, i) => {
    node = freeze(step, i === steps.length - 1 ? f : {});
    let top = node;
    while (top.parent) top = top.parent;
    if (prev) top.parent = prev;
    prev = node;
  });
  return node!;
}

/** The body a header part completes goes where the part ends: on a chain's last step, on each member of a group. */
function setChord(sig: WireSignature, body: WireSignature): void {
  switch (kindOf(sig)) {
    case 'chain': {
      const steps = members(sig, 'tasks');
      setChord(steps[steps.length - 1], body);
      sig.kwargs = { ...sig.kwargs, tasks: steps };
      return;
    }
    case 'group': {
      const tasks = members(sig, 'tasks');
      for (const t of tasks) setChord(t, body);
      sig.kwargs = { ...sig.kwargs, tasks };
      return;
    }
    case 'chord': {
      const inner = wireSignature(sig.kwargs.body, 'chord body');
      setChord(inner, body);
      sig.kwargs = { ...sig.kwargs, body: inner };
      return;
    }
    default:
      sig.options.chord = body;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Celery's option names (a signature's `options`) to ours; names we do not act on are left out. */
function applyOptionsOf(o: Record<string, unknown>): ApplyOptions {
  const a: ApplyOptions = {};
  if (str(o.task_id)) a.taskId = str(o.task_id);
  if (str(o.queue)) a.queue = str(o.queue);
  if (num(o.priority) !== undefined) a.priority = num(o.priority);
  if (num(o.countdown) !== undefined) a.countdown = num(o.countdown);
  if (str(o.eta)) a.eta = str(o.eta);
  if (num(o.expires) !== undefined || str(o.expires)) a.expires = (num(o.expires) ?? str(o.expires))!;
  if (isObject(o.headers)) a.headers = o.headers;
  if (typeof o.ignore_result === 'boolean') a.ignoreResult = o.ignore_result;
  if (str(o.shadow)) a.shadow = str(o.shadow);
  if (num(o.time_limit)) a.timeLimit = num(o.time_limit);
  if (num(o.soft_time_limit)) a.softTimeLimit = num(o.soft_time_limit);
  if (o.parent_id !== undefined) a.parentId = str(o.parent_id) ?? null;
  if (o.root_id !== undefined) a.rootId = str(o.root_id) ?? null;
  if (o.group_id !== undefined) a.group = str(o.group_id) ?? null;
  if (num(o.group_index) !== undefined) a.groupIndex = num(o.group_index);
  return a;
}

/** Options that follow a canvas down to every message it sends (the caller's lineage and priority). */
function inherited(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['parent_id', 'root_id', 'priority']) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  return out;
}

function emit(p: CanvasProducer, sig: WireSignature, ctx: ApplyContext, plan: CanvasPlan): void {
  const over = ctx.options ?? {};
  switch (kindOf(sig)) {
    case 'chain': {
      const steps = prepareChain(sig);
      // the chain's errbacks go to every step, its callbacks to the last (Celery's prepare_steps and run)
      const errbacks = list(sig.options.link_error);
      for (const step of steps) if (errbacks.length > 0) step.options.link_error = [...list(step.options.link_error), ...errbacks];
      const links = list(sig.options.link);
      const last = steps[steps.length - 1];
      if (links.length > 0) last.options.link = [...list(last.options.link), ...links];
      const [first, ...rest] = steps;
      const chain = [...list(over.chain), ...[...rest].reverse()];
      emit(p, first, { args: ctx.args, kwargs: ctx.kwargs, options: { ...inherited(sig.options), ...over, chain } }, plan);
      return;
    }
    case 'group': {
      const down = { ...inherited(sig.options), ...inherited(over) };
      for (const t of members(sig, 'tasks')) emit(p, t, { args: ctx.args, kwargs: ctx.kwargs, options: down }, plan);
      return;
    }
    case 'chord': {
      const header = headerGroup(sig);
      const tasks = members(header, 'tasks');
      const body = wireSignature(sig.kwargs.body, 'chord body');
      // what is given to the chord (a chain to continue, links) belongs to its body, as in Celery
      for (const k of ['link', 'link_error']) {
        const extra = [...list(sig.options[k]), ...list(over[k])];
        if (extra.length > 0) body.options[k] = [...list(body.options[k]), ...extra];
      }
      if (list(over.chain).length > 0) body.options.chain = [...list(body.options.chain), ...list(over.chain)];
      const down = { ...inherited(sig.options), ...inherited(over) };
      if (tasks.length === 0) {
        emit(p, body, { args: [[]], options: down }, plan);
        return;
      }
      for (const t of tasks) setChord(t, body);
      plan.chordSizes.push([header.options.task_id as string, tasks.reduce((n, t) => n + chordCount(t), 0)]);
      for (const t of tasks) emit(p, t, { args: ctx.args, kwargs: ctx.kwargs, options: down }, plan);
      return;
    }
    case 'chunks': {
      emit(p, chunksToGroup(sig), ctx, plan);
      return;
    }
    default: {
      const o = { ...sig.options, ...over };
      const args = sig.immutable ? sig.args : [...(ctx.args ?? []), ...sig.args];
      const kwargs = sig.immutable ? sig.kwargs : { ...sig.kwargs, ...(ctx.kwargs ?? {}) };
      const chain = list(o.chain);
      const embed: Partial<Embed> = {
        callbacks: list(o.link).length > 0 ? list(o.link) : null,
        errbacks: list(o.link_error).length > 0 ? list(o.link_error) : null,
        chain: chain.length > 0 ? chain : null,
        chord: isObject(o.chord) ? wireSignature(o.chord, 'chord') : null,
      };
      const inner = isObject(sig.kwargs.task) && (sig.task === 'celery.starmap' || sig.task === 'celery.map')
        ? (sig.kwargs.task as { task?: string }).task : undefined;
      plan.messages.push(p.prepareMessage(sig.task, args, kwargs, applyOptionsOf(o),
        p.taskDefaults(inner ?? sig.task) ?? {}, embed));
    }
  }
}

/**
 * Freeze and build the messages of a canvas. `ctx` carries the partial arguments (a chain's parent result) and
 * options that override the signature's (Celery's names: `chain`, `parent_id`, `root_id`, `priority`, `task_id`…).
 * The signature given is not changed.
 */
export function planCanvas(p: CanvasProducer, given: WireSignature, ctx: ApplyContext = {}): { plan: CanvasPlan; result: ResultNode } {
  const sig = copy(given);
  const over = { ...(ctx.options ?? {}) };
  const result = freeze(sig, {
    taskId: str(over.task_id),
    groupId: str(over.group_id) ?? null,
    groupIndex: num(over.group_index) ?? null,
    chord: isObject(over.chord) ? wireSignature(over.chord) : null,
  });
  for (const k of ['task_id', 'group_id', 'group_index', 'chord']) delete over[k];
  const plan: CanvasPlan = { messages: [], chordSizes: [] };
  emit(p, sig, { ...ctx, options: over }, plan);
  return { plan, result };
}

/** Record chord sizes, then publish every message in one call. */
export async function publishPlan(plan: CanvasPlan, broker: () => Promise<Broker>, backend: () => Promise<ResultBackend>): Promise<void> {
  if (plan.chordSizes.length > 0) {
    const b = await backend();
    for (const [gid, size] of plan.chordSizes) await b.setChordSize(gid, size);
  }
  if (plan.messages.length > 0) await (await broker()).publish(plan.messages);
}
