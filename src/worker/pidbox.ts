/**
 * The worker's side of Celery's remote control (docs/wire-format.md §9) and its heartbeat events (§10), so that
 * `celery inspect …`, `celery control revoke`, Flower and `celeriac inspect` see celeriac workers like Python ones.
 * Requests not addressed to this node (destination/pattern) are ignored; unknown methods get an error reply.
 */
import { decodeControlRequest, encodeControlReply, encodeEvent, type ControlRequest } from '../protocol/index.ts';
import type { ControlChannel } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import { VERSION } from '../common/version.ts';
import type { Running } from './execute.ts';

/** What the pidbox needs from its worker. */
export interface PidboxWorker {
  readonly hostname: string;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly startedAt: number;
  registered(): string[];
  active(): Running[];
  reservedRequests(): Running[];
  scheduled(): Array<{ eta: Date; run: Running }>;
  /** The revoked ids the worker knows (inspect revoked). */
  revokedIds(): string[];
  readonly processed: Map<string, number>;
  /**
   * Remember the ids and, when `durable`, store them in the broker so workers that start later refuse them too;
   * resolves once stored.
   */
  revoke(taskIds: string[], terminate: boolean, durable: boolean): Promise<void>;
  shutdown(): void;
}

function requestInfo(w: PidboxWorker, r: Running, acknowledged: boolean) {
  const m = r.msg;
  return {
    id: m.id, name: m.task, args: m.args, kwargs: m.kwargs, type: m.task, hostname: w.hostname,
    time_start: r.startedAt / 1000, acknowledged,
    delivery_info: { exchange: m.exchange, routing_key: m.routingKey, priority: m.priority, redelivered: m.redelivered },
    worker_pid: process.pid,
  };
}

function forMe(w: PidboxWorker, req: ControlRequest): boolean {
  if (req.destination && !req.destination.includes(w.hostname)) return false;
  if (req.pattern && !new RegExp(req.pattern).test(w.hostname)) return false;
  return true;
}

function answer(w: PidboxWorker, req: ControlRequest): unknown {
  const args = req.arguments;
  switch (req.method) {
    case 'ping':
      return { ok: 'pong' };
    case 'registered':
      return w.registered();
    case 'active':
      return w.active().map((r) => requestInfo(w, r, true));
    case 'reserved':
      return w.reservedRequests().map((r) => requestInfo(w, r, false));
    case 'scheduled':
      return w.scheduled().map(({ eta, run }) => ({ eta: eta.toISOString(), priority: 6, request: requestInfo(w, run, false) }));
    case 'revoked':
      return w.revokedIds();
    case 'stats':
      return {
        total: Object.fromEntries(w.processed), pid: process.pid, clock: '1',
        uptime: Math.round((Date.now() - w.startedAt) / 1000),
        pool: { 'max-concurrency': w.concurrency, processes: [process.pid], implementation: 'celeriac:async' },
        prefetch_count: w.prefetch, rusage: { maxrss: Math.round(process.memoryUsage().rss / 1024) },
      };
    case 'revoke': {
      const ids = Array.isArray(args.task_id) ? args.task_id.map(String) : [String(args.task_id)];
      // a revoke for every worker lasts (any worker that hears it stores it, as the sender may be Python); one
      // addressed to some workers stays with them. A failure to store it is logged by the worker.
      void w.revoke(ids, args.terminate === true, !req.destination && !req.pattern);
      return { ok: `tasks ${ids.join(', ')} flagged as revoked` };
    }
    case 'shutdown':
      w.shutdown();
      return { ok: 'shutting down' };
    case 'hello':
      return { revoked: {}, clock: 0 };
    default:
      return { error: `No such control command: ${req.method}` };
  }
}

export async function startPidbox(w: PidboxWorker, control: ControlChannel, log: Logger): Promise<() => Promise<void>> {
  const stopListening = await control.listen((raw) => {
    let req: ControlRequest;
    try {
      req = decodeControlRequest(raw);
    } catch (err) {
      log.warning(`Ignoring an unreadable control message: ${(err as Error).message}`);
      return;
    }
    if (!forMe(w, req)) return;
    log.debug(`pidbox received method ${req.method}() [reply_to:${JSON.stringify(req.reply_to ?? null)} ticket:${req.ticket ?? null}]`);
    let value: unknown;
    try {
      value = answer(w, req);
    } catch (err) {
      value = { error: String(err) };
    }
    if (req.reply_to && req.ticket) {
      control.reply(req.reply_to.routing_key, encodeControlReply(w.hostname, req.ticket, req.reply_to.routing_key, value))
        .catch((err) => log.warning(`Cannot reply to ${req.method}: ${(err as Error).message}`));
    }
  });
  const beat = (type: string) => {
    const { routingKey, raw } = encodeEvent(type, w.hostname, {
      freq: 2.0, active: w.active().length, processed: [...w.processed.values()].reduce((a, b) => a + b, 0),
      loadavg: [0, 0, 0], sw_ident: 'celeriac', sw_ver: VERSION, sw_sys: process.platform,
    });
    return control.event(routingKey, raw).catch((err: unknown) => {
      log.debug(`Cannot send ${type}: ${(err as Error).message}`); // monitors miss one heartbeat; the next one follows
    });
  };
  await beat('worker-online');
  const timer = setInterval(() => void beat('worker-heartbeat'), 2000);
  return async () => {
    clearInterval(timer);
    await beat('worker-offline');
    await stopListening();
  };
}
