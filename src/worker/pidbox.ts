/**
 * The worker's side of Celery's remote control (docs/wire-format.md §9) and its heartbeat events (§10), so that
 * `celery inspect …`, `celery control revoke`, Flower and `celeriac inspect` see celeriac workers like Python ones.
 * Requests not addressed to this node (destination/pattern) are ignored; unknown methods get an error reply.
 * Replies are Celery's (celery/worker/control.py): `rate_limit` and `time_limit` go to the worker's optional setters,
 * and `hello`, which a starting Python worker sends to learn the revoked ids (mingle), is answered with the ids
 * this worker knows, in the form of Celery's LimitedSet so the Python worker refuses those tasks too.
 */
import { decodeControlRequest, encodeControlReply, encodeEvent, type ControlRequest } from '../protocol/index.ts';
import type { ControlChannel } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import { VERSION } from '../common/version.ts';
import { REVOKE_EXPIRES_MS } from '../stores/limits.ts';
import type { Running } from './execute.ts';
import { loadavg } from 'node:os';

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
  /**
   * The revoked ids the worker knows, each with when its revoke expires (ms since the epoch), for `hello` (mingle):
   * a Python worker that starts learns them with their remaining life. Without it, each id of revokedIds() is
   * given a full REVOKE_EXPIRES from now.
   */
  revokedUntil?(): Map<string, number>;
  /**
   * Remote control's `rate_limit`: a new rate for a task ('10/s', '100/m', '1000/h', a number per second; null for
   * none), at once; false for a task the worker does not have; throws for a rate it cannot read. Without it the
   * reply is an error.
   */
  setRateLimit?(taskName: string, rate: string | null): boolean;
  /** Remote control's `time_limit`: new soft and hard limits in seconds (null: none); false for an unknown task. */
  setTimeLimit?(taskName: string, soft: number | null, hard: number | null): boolean;
  /** The longest event-loop stall seen, for `inspect stats`. */
  worstStall?(): { ms: number; tasks: string[]; at: number } | null;
  /** The logical clock of the worker's events (shared with its task events); without it every event has clock 1. */
  readonly eventClock?: { forward(): number };
}

/** Seconds between worker-heartbeat events: Celery's default heartbeat interval (the `freq` they carry). */
export const HEARTBEAT_SECONDS = 2.0;

/** The load averages as Celery's heartbeat sends them: os.getloadavg() rounded up to two decimals. */
function loadAverage(): number[] {
  return loadavg().map((l) => Math.ceil(l * 1e2) / 1e2);
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

/** Celery's seconds of time.monotonic() (CLOCK_MONOTONIC on Linux, shared by the processes of one machine). */
function monotonicSeconds(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1e6;
}

/** A float as Python's json must read it (a whole number would arrive as an int, which LimitedSet refuses). */
const pyFloat = (x: number): number => (Number.isInteger(x) ? x + 1e-6 : x);

/**
 * `hello`'s `revoked`: Celery's LimitedSet data, `{id: [inserted, id]}`, where `inserted` is the receiver's
 * time.monotonic() at which the id would have been added to last its remaining life: it expires `REVOKE_EXPIRES`
 * after that (celery/worker/consumer/mingle.py and LimitedSet.update()).
 */
function helloRevoked(w: PidboxWorker): Record<string, [number, string]> {
  const now = Date.now();
  const mono = monotonicSeconds();
  const until = w.revokedUntil?.() ?? new Map(w.revokedIds().map((id) => [id, now + REVOKE_EXPIRES_MS]));
  const out: Record<string, [number, string]> = {};
  for (const [id, expiresAt] of until) {
    if (expiresAt <= now) continue;
    out[id] = [pyFloat(mono - (REVOKE_EXPIRES_MS - (expiresAt - now)) / 1000), id];
  }
  return out;
}

/** The ids of a `hello`'s `revoked` ({id: [inserted, id]} or {id: inserted}, or a list) still alive for their sender. */
export function liveHelloIds(revoked: unknown): string[] {
  if (Array.isArray(revoked)) return revoked.map(String);
  if (!revoked || typeof revoked !== 'object') return [];
  const mono = monotonicSeconds();
  return Object.entries(revoked as Record<string, unknown>).filter(([, v]) => {
    const inserted = Array.isArray(v) ? v[0] : v;
    return typeof inserted !== 'number' || inserted + REVOKE_EXPIRES_MS / 1000 > mono;
  }).map(([id]) => id);
}

const numberOrNull = (v: unknown): number | null => {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
};

function rateLimit(w: PidboxWorker, args: Record<string, unknown>): unknown {
  if (!w.setRateLimit) return { error: 'rate limits are not supported by this worker' };
  const raw = args.rate_limit;
  const rate = raw === null || raw === undefined || raw === '' || raw === 0 ? null : String(raw);
  let known: boolean;
  try {
    known = w.setRateLimit(String(args.task_name), rate);
  } catch (err) {
    return { error: `Invalid rate limit string: ${(err as Error).message}` };
  }
  if (!known) return { error: 'unknown task' };
  return { ok: rate === null ? 'rate limit disabled successfully' : 'new rate limit set successfully' };
}

function timeLimit(w: PidboxWorker, args: Record<string, unknown>): unknown {
  if (!w.setTimeLimit) return { error: 'time limits are not supported by this worker' };
  if (!w.setTimeLimit(String(args.task_name), numberOrNull(args.soft), numberOrNull(args.hard))) {
    return { error: 'unknown task' };
  }
  return { ok: 'time limits set successfully' };
}

function revoke(w: PidboxWorker, req: ControlRequest, terminate: boolean): unknown {
  const args = req.arguments;
  const ids = Array.isArray(args.task_id) ? args.task_id.map(String) : [String(args.task_id)];
  // a revoke for every worker lasts (any worker that hears it stores it, as the sender may be Python); one
  // addressed to some workers stays with them. A failure to store it is logged by the worker.
  const running = terminate ? new Set(w.active().map((r) => r.msg.id)) : null;
  void w.revoke(ids, terminate, !req.destination && !req.pattern);
  if (!running) return { ok: `tasks ${ids.join(', ')} flagged as revoked` };
  const terminated = ids.filter((id) => running.has(id));
  return { ok: terminated.length === 0 ? 'terminate: tasks unknown' : `terminate: ${terminated.join(', ')}` };
}

function answer(w: PidboxWorker, req: ControlRequest, heartbeat: () => void): unknown {
  const args = req.arguments;
  switch (req.method) {
    case 'ping':
      return { ok: 'pong' };
    case 'clock':
      return { clock: 1 };
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
        // celeriac's own: the longest the event loop was blocked, and what ran then
        loop_stall: w.worstStall?.() ?? null,
      };
    case 'revoke':
      return revoke(w, req, args.terminate === true);
    case 'terminate':
      return revoke(w, req, true);
    case 'rate_limit':
      return rateLimit(w, args);
    case 'time_limit':
      return timeLimit(w, args);
    case 'heartbeat':
      heartbeat();
      return null;
    case 'shutdown':
      w.shutdown();
      return { ok: 'shutting down' };
    case 'hello': {
      // a starting Python worker (mingle): take its revokes, as Celery does, and answer with ours
      if (args.from_node === w.hostname) return null;
      const known = new Set(w.revokedIds());
      const theirs = liveHelloIds(args.revoked).filter((id) => !known.has(id));
      if (theirs.length > 0) void w.revoke(theirs, false, true);
      return { revoked: helloRevoked(w), clock: 1 };
    }
    default:
      return { error: `No such control command: ${req.method}` };
  }
}

export async function startPidbox(w: PidboxWorker, control: ControlChannel, log: Logger): Promise<() => Promise<void>> {
  const beat = (type: string) => {
    const { routingKey, raw } = encodeEvent(type, w.hostname, {
      freq: HEARTBEAT_SECONDS, active: w.active().length, processed: [...w.processed.values()].reduce((a, b) => a + b, 0),
      loadavg: loadAverage(), sw_ident: 'celeriac', sw_ver: VERSION, sw_sys: process.platform,
    }, w.eventClock?.forward() ?? 1);
    return control.event(routingKey, raw).catch((err: unknown) => {
      log.debug(`Cannot send ${type}: ${(err as Error).message}`); // monitors miss one heartbeat; the next one follows
    });
  };
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
      value = answer(w, req, () => void beat('worker-heartbeat'));
    } catch (err) {
      value = { error: String(err) };
    }
    if (req.reply_to && req.ticket) {
      control.reply(req.reply_to.routing_key, encodeControlReply(w.hostname, req.ticket, req.reply_to.routing_key, value))
        .catch((err) => log.warning(`Cannot reply to ${req.method}: ${(err as Error).message}`));
    }
  });
  await beat('worker-online');
  const timer = setInterval(() => void beat('worker-heartbeat'), HEARTBEAT_SECONDS * 1000);
  return async () => {
    clearInterval(timer);
    await beat('worker-offline');
    await stopListening();
  };
}
