/**
 * Signatures and the canvas from TypeScript, Celery's API in camelCase: `add.s(2, 2)`, `add.si(2, 2)`,
 * `chain(a, b, c)` (or `a.pipe(b, c)`), `group(...)`, `chord(header, body)`, `add.map/starmap/chunks(...)`.
 * A signature holds Celery's wire form (`{task, args, kwargs, options, subtask_type, immutable}`), so what is sent
 * is exactly what Python Celery sends and reads; applying one goes through task/canvas.ts, as a worker's does.
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import type { Broker } from '../broker/broker.ts';
import { AsyncResult, type ResultSource } from './async-result.ts';
import { GroupResult } from './group-result.ts';
import { chordSignature, planCanvas, publishPlan, wireSignature, type CanvasProducer, type ResultNode, type WireSignature } from './canvas.ts';
import { checkApplyOptions, type ApplyOptions } from './options.ts';

/** What a signature needs from its app to be applied. */
export interface CanvasApp extends CanvasProducer, ResultSource {
  broker(): Promise<Broker>;
}

/** Options a signature can carry (`sig.set(...)`), as `applyAsync` takes them. */
export type SignatureOptions = Pick<ApplyOptions,
  'taskId' | 'queue' | 'priority' | 'countdown' | 'eta' | 'expires' | 'headers' | 'ignoreResult' | 'shadow' | 'timeLimit' | 'softTimeLimit'>;

const WIRE_NAMES: Record<keyof SignatureOptions, string> = {
  taskId: 'task_id', queue: 'queue', priority: 'priority', countdown: 'countdown', eta: 'eta', expires: 'expires',
  headers: 'headers', ignoreResult: 'ignore_result', shadow: 'shadow', timeLimit: 'time_limit', softTimeLimit: 'soft_time_limit',
};

/** Our option names to Celery's, dates as ISO-8601 strings (what Celery puts in a signature's options). */
function wireOptions(o: SignatureOptions, where: string): Record<string, unknown> {
  checkApplyOptions(o as ApplyOptions, where);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const name = WIRE_NAMES[k as keyof SignatureOptions];
    if (!name) {
      throw new CeleriacError(ErrorCode.BadOption, `${where}: "${k}" is not an option a signature carries ` +
        `(${Object.keys(WIRE_NAMES).join(', ')})`);
    }
    if (v !== undefined) out[name] = v instanceof Date ? v.toISOString() : v;
  }
  return out;
}

function toResult(node: ResultNode, app: CanvasApp): AsyncResult<unknown> | GroupResult<unknown> {
  const r = node.kind === 'group'
    ? new GroupResult(node.id, (node.results ?? []).map((n) => toResult(n, app)), app)
    : new AsyncResult(node.id, app);
  r.parent = node.parent ? toResult(node.parent, app) : null;
  return r;
}

/**
 * A task call (or a whole canvas) to run later: `R` is the value its result resolves to, `Res` the handle
 * `applyAsync()` gives (an AsyncResult, or a GroupResult for a group).
 */
export class Signature<R = unknown, Res = AsyncResult<R>> {
  /** @internal */
  constructor(readonly app: CanvasApp, protected readonly wire: WireSignature) {}

  get name(): string {
    return this.wire.task;
  }

  get args(): readonly unknown[] {
    return this.wire.args;
  }

  get kwargs(): Readonly<Record<string, unknown>> {
    return this.wire.kwargs;
  }

  /** The options in Celery's names, as they go on the wire. */
  get options(): Readonly<Record<string, unknown>> {
    return this.wire.options;
  }

  get immutable(): boolean {
    return this.wire.immutable;
  }

  /** Set options (`queue`, `countdown`, `priority`…) on this signature; returns it. */
  set(options: SignatureOptions): this {
    Object.assign(this.wire.options, wireOptions(options, `signature ${this.name}`));
    return this;
  }

  /** Run `callback` with this one's result as its first argument after it succeeds; returns the callback. */
  link<S extends Signature<any, any>>(callback: S): S {
    this.appendOption('link', callback);
    return callback;
  }

  /**
   * Run `errback` when this one fails: a task whose handler takes one parameter gets the failed task's id; one that
   * takes more is called in the failing worker as `(request, error, traceback)` (Celery's two errback forms).
   */
  linkError<S extends Signature<any, any>>(errback: S): S {
    this.appendOption('link_error', errback);
    return errback;
  }

  private appendOption(key: 'link' | 'link_error', sig: Signature<any, any>): void {
    const have = this.wire.options[key];
    this.wire.options[key] = [...(Array.isArray(have) ? have : have ? [have] : []), sig.toJSON()];
  }

  /** A copy, with `args` prepended (unless immutable), `kwargs` merged and `options` added. */
  clone(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Signature<R, Res> {
    const w = wireSignature(structuredClone(this.wire));
    if (!w.immutable) {
      w.args = [...args, ...w.args];
      w.kwargs = { ...w.kwargs, ...kwargs };
    }
    Object.assign(w.options, wireOptions(options, `signature ${this.name}`));
    return new (this.constructor as new (app: CanvasApp, wire: WireSignature) => Signature<R, Res>)(this.app, w);
  }

  /** `a.pipe(b, c)` is `chain(a, b, c)`. */
  pipe<T>(...next: [...Signature<any, any>[], Signature<T, any>]): Signature<T> {
    return chain(this as Signature<any, any>, ...next) as Signature<T>;
  }

  /**
   * Send it. `args` are prepended to the signature's own (not for an immutable one), `kwargs` merged, `options`
   * override the signature's. Resolves once every message is stored.
   */
  async applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<Res> {
    const { plan, result } = planCanvas(this.app, this.wire, {
      args, kwargs, options: wireOptions(options, `signature ${this.name}`),
    });
    await publishPlan(plan, () => this.app.broker(), () => this.app.backend());
    return toResult(result, this.app) as Res;
  }

  delay(...args: unknown[]): Promise<Res> {
    return this.applyAsync(args);
  }

  /** Celery's wire form (a copy). */
  toJSON(): WireSignature {
    return structuredClone(this.wire);
  }
}

type AnySignature = Signature<any, any>;

function appOf(sigs: AnySignature[], what: string): CanvasApp {
  const first = sigs[0];
  if (!first) throw new CeleriacError(ErrorCode.BadOption, `${what} needs at least one signature`);
  for (const s of sigs) {
    if (!(s instanceof Signature)) {
      throw new CeleriacError(ErrorCode.BadOption, `${what} takes signatures (task.s(...), app.signature(...)), got ${JSON.stringify(s)}`);
    }
  }
  return first.app;
}

const flat = (sigs: Array<AnySignature | AnySignature[]>): AnySignature[] => sigs.flatMap((s) => (Array.isArray(s) ? s : [s]));

/** Tasks run one after another, each getting the previous result as its first argument (unless immutable). */
export function chain<T>(...sigs: [...AnySignature[], Signature<T, any>]): Signature<T> {
  const app = appOf(sigs, 'chain');
  return new Signature<T>(app, {
    task: 'celery.chain', args: [], kwargs: { tasks: sigs.map((s) => s.toJSON()) }, options: {}, subtask_type: 'chain',
    immutable: false, chord_size: null,
  });
}

/** Tasks run in parallel; the result is a GroupResult whose get() gives their values in order. */
export function group<T>(...sigs: Array<Signature<T, any> | Signature<T, any>[]>): Signature<T[], GroupResult<T>> {
  const all = flat(sigs);
  const app = appOf(all, 'group');
  return new Signature<T[], GroupResult<T>>(app, {
    task: 'celery.group', args: [], kwargs: { tasks: all.map((s) => s.toJSON()) }, options: {}, subtask_type: 'group',
    immutable: false,
  });
}

/**
 * The header runs in parallel; when every part has finished, the body runs with the list of their values. A failed
 * part fails the body with ChordError and runs the body's errbacks.
 */
export function chord<T>(header: AnySignature[] | AnySignature, body: Signature<T, any>): Signature<T> {
  const parts = Array.isArray(header) ? header : [header];
  const app = appOf([body, ...parts], 'chord');
  const one = Array.isArray(header) ? null : header.toJSON();
  const h = one?.subtask_type === 'group' ? one : parts.map((s) => s.toJSON());
  return new Signature<T>(app, chordSignature(h, body.toJSON()));
}
