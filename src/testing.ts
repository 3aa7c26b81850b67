/**
 * `celeriac/testing`: helpers for users' own tests. An app on `memory://` (no Redis, no file), a worker that runs
 * for the length of a callback, and running a task's handler eagerly in this process (Celery's `task.apply()`).
 */
import { randomUUID } from 'node:crypto';
import { Celeriac } from './app/app.ts';
import type { CeleriacConfig } from './app/config.ts';
import type { Task } from './task/task.ts';
import type { TaskContext, TaskRequest } from './task/context.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';
import { createLogger } from './common/logger.ts';
import { RetrySignal } from './common/errors.ts';

/** An app whose broker and backend live in this process only; each call gets its own fresh store. */
export function memoryApp(name = 'test', config: CeleriacConfig = {}): Celeriac {
  const url = `memory://${name}-${randomUUID()}`;
  return new Celeriac(name, { ...config, broker: url, backend: url });
}

/** Run `fn` with a worker consuming `app`'s queues, then stop the worker (warm) whatever happens. */
export async function withWorker<T>(app: Celeriac, fn: (worker: Worker) => Promise<T>, options: WorkerOptions = {}): Promise<T> {
  const worker = new Worker(app, { logger: createLogger({ level: 'error' }), ...options });
  await worker.start();
  try {
    return await fn(worker);
  } finally {
    await worker.stop();
  }
}

/**
 * Call a task's handler here and now, with a request like a worker's (no broker involved). `retry()` throws the retry
 * signal instead of re-publishing, so a test can assert on it; `updateState()` does nothing.
 */
export async function runEagerly<A extends unknown[], R>(task: Task<A, R>, args: A, kwargs: Record<string, unknown> = {}): Promise<R> {
  const id = randomUUID();
  const request: TaskRequest = {
    id, task: task.name, args, kwargs, retries: 0, headers: {}, eta: null, expires: null, rootId: id, parentId: null,
    group: null, groupIndex: null, hostname: 'eager@localhost',
    deliveryInfo: { queue: task.options.queue ?? 'celery', exchange: '', routingKey: task.options.queue ?? 'celery',
      priority: task.options.priority ?? 0, redelivered: false },
  };
  const controller = new AbortController();
  const ctx: TaskContext = {
    name: task.name,
    request,
    signal: controller.signal,
    retry: (o = {}) => new RetrySignal(o.countdown ?? task.resolved.defaultRetryDelay, o.exc),
    updateState: async () => {},
  };
  const callArgs = Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
  return (await task.handler.apply(ctx, callArgs as A)) as R;
}
