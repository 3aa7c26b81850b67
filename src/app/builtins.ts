/**
 * The tasks Celery registers on every app and that canvases send as messages (Celery's celery/app/builtins.py):
 * `celery.starmap` and `celery.map` (one message running a task once per item), `celery.chunks`, `celery.accumulate`,
 * `celery.chord_unlock` (the chord join of backends without a native one) and `celery.backend_cleanup`.
 * They read their inputs from the request (`kwargs.task`, `kwargs.it`…) as Celery's do.
 */
import { NotRegisteredError } from '../common/errors.ts';
import type { TaskContext } from '../task/context.ts';
import { planCanvas, publishPlan, wireSignature } from '../task/canvas.ts';
import type { CanvasApp } from '../task/signature.ts';
import type { Task, TaskHandler } from '../task/task.ts';
import type { TaskOptions } from '../task/options.ts';

/** What registering the built-ins needs of the app (app.ts calls registerBuiltins on itself). */
interface BuiltinApp extends CanvasApp {
  readonly tasks: ReadonlyMap<string, Task>;
  task<A extends unknown[], R>(name: string, handler: TaskHandler<A, R>, options?: TaskOptions): unknown;
}

function innerTask(app: BuiltinApp, sig: unknown) {
  const w = wireSignature(sig, 'the task of a starmap/map');
  const task = app.tasks.get(w.task);
  if (!task) throw new NotRegisteredError(w.task);
  return task;
}

const kw = (ctx: TaskContext): Record<string, unknown> => ctx.request.kwargs;
const argOr = (ctx: TaskContext, i: number, name: string): unknown => (ctx.request.args.length > i ? ctx.request.args[i] : kw(ctx)[name]);

export function registerBuiltins(app: BuiltinApp): void {
  app.task('celery.starmap', async function (this: TaskContext) {
    const task = innerTask(app, argOr(this, 0, 'task'));
    const out: unknown[] = [];
    for (const item of (argOr(this, 1, 'it') as unknown[][]) ?? []) out.push(await task.handler.apply(this, [...item]));
    return out;
  });

  app.task('celery.map', async function (this: TaskContext) {
    const task = innerTask(app, argOr(this, 0, 'task'));
    const out: unknown[] = [];
    for (const item of (argOr(this, 1, 'it') as unknown[]) ?? []) out.push(await task.handler.call(this, item));
    return out;
  });

  app.task('celery.chunks', async function (this: TaskContext) {
    const sig = {
      task: 'celery.chunks', args: [], options: {}, subtask_type: 'chunks', immutable: true,
      kwargs: { task: argOr(this, 0, 'task'), it: argOr(this, 1, 'it'), n: argOr(this, 2, 'n') },
    };
    const { plan, result } = planCanvas(app, sig, { options: { parent_id: this.request.id, root_id: this.request.rootId ?? this.request.id } });
    await publishPlan(plan, () => app.broker(), () => app.backend());
    return [[result.id, null], (result.results ?? []).map((r) => [[r.id, null], null])];
  });

  app.task('celery.accumulate', function (this: TaskContext) {
    const index = kw(this).index;
    return typeof index === 'number' ? this.request.args[index] : this.request.args;
  });

  // Celery's unlock_chord(group_id, callback, interval, max_retries, result): poll the header, then apply the body
  app.task('celery.chord_unlock', async function (this: TaskContext) {
    const callback = wireSignature(argOr(this, 1, 'callback'), 'chord_unlock callback');
    const tuples = (kw(this).result as Array<[[string, unknown], unknown]> | undefined) ?? [];
    const ids = tuples.map((t) => t[0][0]);
    const metas = await (await app.backend()).getMany(ids);
    if (metas.some((m) => !m || !['SUCCESS', 'FAILURE', 'REVOKED'].includes(m.status))) {
      const interval = typeof kw(this).interval === 'number' ? (kw(this).interval as number) : 1;
      throw this.retry({ countdown: interval, maxRetries: (kw(this).max_retries as number | undefined) ?? null });
    }
    const failed = metas.findIndex((m) => m!.status !== 'SUCCESS');
    if (failed >= 0) throw new Error(`Dependency ${ids[failed]} raised ${JSON.stringify(metas[failed]!.result)}`);
    const { plan } = planCanvas(app, callback, { args: [metas.map((m) => m!.result)], options: { parent_id: this.request.id } });
    await publishPlan(plan, () => app.broker(), () => app.backend());
    return null;
  }, { maxRetries: null });

  // every backend here expires results by itself (Redis TTLs, SQLite sweeps): nothing is left to clean
  app.task('celery.backend_cleanup', () => null);
}

/** Built-in task names are Celery's own: banners and `inspect registered` list the app's tasks without them. */
export const isBuiltin = (name: string): boolean => name.startsWith('celery.');
