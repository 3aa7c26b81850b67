/**
 * The caller's side of remote control (Celery's `app.control`): broadcast a command to workers — celeriac or Python —
 * and collect their replies for a while. Needs a broker with a control channel (Redis, or SQLite between the celeriac
 * processes on the file), except revoke(), which is also stored in the broker's durable revoke store and so works on
 * every broker (memory:// included).
 */
import type { Celeriac } from '../app/app.ts';
import type { RevokeOptions } from '../task/async-result.ts';

export interface BroadcastOptions {
  /** Node names to address (default: every worker). */
  destination?: string[];
  /** Milliseconds to collect replies (default 1000). */
  timeout?: number;
  /** Stop after this many replies (default: as many destinations as given, else wait the whole timeout). */
  limit?: number;
}

export type InspectMethod = 'ping' | 'active' | 'registered' | 'stats' | 'reserved' | 'scheduled' | 'revoked';

export class Control {
  constructor(private readonly app: Celeriac) {}

  /** Send a command and gather `{node: reply}` from the workers that answer within the timeout. */
  broadcast(method: string, args: Record<string, unknown> = {}, o: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.app.broadcast(method, args, o);
  }

  /** A command that expects no reply (Celery's "cast"), e.g. revoke. */
  cast(method: string, args: Record<string, unknown> = {}, destination?: string[]): Promise<void> {
    return this.app.cast(method, args, destination);
  }

  ping(o: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.broadcast('ping', {}, o);
  }

  inspect(method: InspectMethod, o: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    const args = method === 'active' ? { safe: null } : method === 'registered' ? { taskinfoitems: [] } : {};
    return this.broadcast(method, args, o);
  }

  /**
   * Every worker discards the task when it arrives or comes due; with `terminate`, a running one is stopped (its
   * signal fires). The revoke is stored in the broker (for `expires` seconds, default 10800: Celery's
   * REVOKE_EXPIRES), so celeriac workers that start later, or restart, refuse the task too; and it is broadcast as
   * Celery does, so running workers, Python ones included, hear it at once. A broker without remote control
   * (memory) only stores it: celeriac workers find it there (`terminate` then has no effect on a running task).
   * With `destination`, only the named workers are told: nothing is stored. Rejects when the revoke could not be
   * stored or sent (after trying both).
   */
  async revoke(taskId: string | string[], o: RevokeOptions & { destination?: string[] } = {}):
    Promise<void> {
    if (o.destination === undefined) return this.app.revoke(taskId, o);
    await this.cast('revoke', { task_id: taskId, terminate: o.terminate ?? false, signal: o.signal ?? 'SIGTERM' }, o.destination);
  }

  shutdown(destination?: string[]): Promise<void> {
    return this.cast('shutdown', {}, destination);
  }

  /**
   * Celery's `rate_limit`: workers that have the task start it at most at `rate` ('10/s', '100/m', '1000/h', a number
   * per second; null or 0 for no limit) from now on. Replies `{node: {ok}}`, or `{node: {error: 'unknown task'}}`.
   */
  rateLimit(taskName: string, rate: string | number | null, o: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.broadcast('rate_limit', { task_name: taskName, rate_limit: rate }, o);
  }

  /** Celery's `time_limit`: new soft and hard time limits (seconds; null for none) for a task, on the workers. */
  timeLimit(taskName: string, soft: number | null, hard: number | null = null, o: BroadcastOptions = {}):
    Promise<Record<string, unknown>> {
    return this.broadcast('time_limit', { task_name: taskName, soft, hard }, o);
  }
}
