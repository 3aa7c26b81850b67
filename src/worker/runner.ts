/**
 * The async pool: up to `concurrency` tasks run at once on the event loop; the others wait in arrival order for a
 * slot. When its slot comes, a task is checked once more (revoked or expired meanwhile: discarded), as Celery checks
 * both at receipt and before running.
 */
import type { Task } from '../task/task.ts';
import { executeTask, type ExecEnv, type Running } from './execute.ts';

export interface RunnerHooks {
  /** Refuse a task whose slot came (revoked or expired meanwhile); true when it was refused. */
  refuse(run: Running): boolean;
  /** A task ended, whatever its outcome (its records and ack are with the Settler). */
  done(run: Running): void;
}

export class Runner {
  readonly running = new Map<string, Running>();
  private readonly waiting: Running[] = [];
  private readonly idle: Array<() => void> = [];
  private closed = false;

  constructor(readonly concurrency: number, private readonly env: ExecEnv, private readonly hooks: RunnerHooks) {}

  enqueue(run: Running): void {
    if (this.running.size < this.concurrency) this.start(run);
    else this.waiting.push(run);
  }

  /** Tasks waiting for a slot, in order. */
  get queued(): readonly Running[] {
    return this.waiting;
  }

  /** Take every waiting task away (to give it back to the broker). */
  takeWaiting(): Running[] {
    return this.waiting.splice(0);
  }

  /** Fire every running task's AbortSignal (cold shutdown); no new task starts after this. */
  abortAll(reason: Error): Running[] {
    this.closed = true;
    const runs = [...this.running.values()];
    for (const r of runs) r.abort(reason);
    return runs;
  }

  /** Resolves when no task is running. */
  drained(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private start(run: Running): void {
    if (this.closed) return;
    if (this.hooks.refuse(run)) {
      this.startNext();
      return;
    }
    const task = this.env.app.tasks.get(run.msg.task) as Task;
    this.running.set(run.delivery.tag, run);
    void this.runToEnd(run, task);
  }

  private async runToEnd(run: Running, task: Task): Promise<void> {
    await executeTask(this.env, run, task);
    this.running.delete(run.delivery.tag);
    this.hooks.done(run);
    if (this.running.size === 0) for (const resolve of this.idle.splice(0)) resolve();
    this.startNext();
  }

  private startNext(): void {
    const next = this.waiting.shift();
    if (next) this.start(next);
  }
}
