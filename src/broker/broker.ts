/**
 * The broker contract: the promises every broker implementation (redis://, sqlite://, memory://) keeps.
 * The worker and the app depend only on this file; implementations live in same-named folders.
 *
 * Promises:
 * 1. publish() resolves only when every message is stored; it rejects if any is not (nothing is reported sent that
 *    the store did not accept).
 * 2. Within a queue, lower priority numbers are served first (Celery/kombu on Redis: 0 before 3 before 6 before 9);
 *    within one priority band, first in first out. Across queues, round-robin (the worker rotates the order).
 * 3. reserve() moves a message atomically from its queue into the reserved set: from then on it is either
 *    acked, put back (requeue), set aside (deadLetter), or — when its holder stops renewing — recovered to its queue.
 *    A message is never handed to two consumers while its reservation is alive.
 * 4. renew() keeps reservations alive; recover() brings back the messages of reservations that were not renewed
 *    (a dead worker's) and marks them redelivered.
 * 5. Messages that cannot be read as a task envelope are never dropped: they go to the dead-letter list. So do, at
 *    reservation, messages over `maxMessageBytes` (refused without handing them whole to the worker where the store
 *    allows: Redis and SQLite check the size first) and messages whose delivery tag is not valid UTF-8 (Redis: no
 *    ack could end their reservation).
 * 6. The dead-letter list is bounded: an entry keeps the head of its message (4 KiB), its size and SHA-1
 *    (stores/dead-letter.ts); a list keeps the newest `deadLetterLimit` entries (10,000 by default).
 * 7. Revokes are durable: storeRevokes() keeps task ids until they expire (3 hours by default, Celery's
 *    REVOKE_EXPIRES), seen from every connection; a store keeps at most `revokesMax` live ids (50,000, Celery's
 *    REVOKES_MAX), dropping those that expire soonest. Storing an id again never shortens its life.
 */
import type { DeadLetter } from '../stores/dead-letter.ts';
import type { RateTurn } from '../stores/rate.ts';

export interface OutgoingMessage {
  queue: string;
  priority: number;
  /** The JSON envelope exactly as it goes on the wire. */
  raw: string;
  /** Park the message until this time (ms since the epoch) instead of queueing it now (worker retries). */
  dueAt?: number;
}

export interface Delivery {
  /** The reservation handle (the envelope's delivery_tag). */
  tag: string;
  raw: string;
  queue: string;
}

/** A message the broker could not even reserve (not JSON, no delivery tag): already moved to the dead-letter list. */
export interface Rejected {
  /** The message; only its head (as its dead letter keeps it) when it was refused for its size. */
  raw: string;
  queue: string;
  reason: string;
  /** The task id the broker found in a message it did not read whole (too big), so a FAILURE can name it. */
  taskId?: string;
}

export interface ReserveResult {
  deliveries: Delivery[];
  rejected: Rejected[];
}

/** An entry of the dead-letter list: `{ reason, queue, raw, at, size, sha1, truncated }` (built once for every store, in stores/dead-letter.ts). */
export type { DeadLetter };

/**
 * Beat's coordination store, kept in the broker so any number of beat processes can run:
 * a leader lock with a lease, and per-entry last-run times that change only together with the send they record.
 */
export interface BeatStore {
  /** Become or stay leader for `ttlMs`; true when `owner` holds the lock after the call. */
  acquire(owner: string, ttlMs: number): Promise<boolean>;
  release(owner: string): Promise<void>;
  /** Last run (ms since the epoch) of each entry that ever ran. */
  lastRuns(): Promise<Map<string, number>>;
  /**
   * Send a due entry exactly once: only while `owner` holds the lock and the entry's last run is still
   * `expectedLastRun` (null: never ran) does it record `runAt` and publish `message`, in one atomic step.
   * Returns false (and sends nothing) otherwise.
   */
  fire(owner: string, entry: string, expectedLastRun: number | null, runAt: number, message: OutgoingMessage): Promise<boolean>;
  /** Forget the state of entries that are no longer scheduled. */
  prune(keep: string[]): Promise<void>;
}

/**
 * Remote control and events over the broker (Celery's pidbox and celeryev fanouts), between processes. Redis carries
 * them as Celery does, so Python workers and tools take part; the SQLite file carries the same envelopes between the
 * celeriac processes on one machine (sqlite/control.ts). Optional: memory:// has none.
 */
/** `expected` replies of ControlChannel.request: one from every process the broadcast reached. */
export const EVERY_LISTENER = -1;

export interface ControlChannel {
  /** Whether Python Celery workers can be on the other end (Redis); on SQLite every worker is a celeriac one. */
  readonly pythonPeers: boolean;
  /** Receive every control request broadcast to workers; resolves to a function that stops listening. */
  listen(handler: (raw: string) => void): Promise<() => Promise<void>>;
  /** Send a reply to the caller's reply list (found through kombu's reply bindings, as Python workers do). */
  reply(routingKey: string, raw: string): Promise<void>;
  /**
   * Broadcast a request; collect replies on `replyKey` until `timeoutMs` or `expected` replies. EVERY_LISTENER waits
   * for as many replies as the broadcast reached where the store can count them (Redis), else for the timeout.
   */
  request(raw: string, replyKey: string | null, timeoutMs: number, expected?: number): Promise<string[]>;
  /** Publish a worker event (worker-heartbeat, …) for monitors such as Flower. */
  event(routingKey: string, raw: string): Promise<void>;
}

export interface Broker {
  /** The URL with any password masked, for banners and logs. */
  readonly displayUrl: string;
  /** Make the queues known (kombu's bindings) so producers that route through the default exchange find them. */
  declareQueues(queues: string[]): Promise<void>;
  publish(messages: OutgoingMessage[]): Promise<void>;
  /**
   * Reserve up to `max` messages from `queues` (in the given order within each priority band).
   * Returns at once with what is ready; when nothing is, waits up to `waitMs` for the first message.
   */
  reserve(queues: string[], max: number, waitMs: number): Promise<ReserveResult>;
  /** Finish reservations: the messages are gone for good. */
  ack(tags: string[]): Promise<void>;
  /** Put reserved messages back at the front of their queues, marked redelivered (warm shutdown, reject+requeue). */
  requeue(deliveries: Delivery[]): Promise<void>;
  /** Keep these reservations alive for another lease. */
  renew(tags: string[]): Promise<void>;
  /** Bring expired reservations back to their queues; returns how many came back. */
  recover(): Promise<number>;
  /** Set a reserved message aside with a reason (and end its reservation). */
  deadLetter(delivery: Delivery, reason: string): Promise<void>;
  /** Read the dead-letter list, newest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  /** Remove every waiting message from these queues; returns how many were removed. */
  purge(queues: string[]): Promise<number>;
  /** Number of waiting messages per queue (all priority bands). */
  queueLength(queue: string): Promise<number>;
  /**
   * Park a reserved message until `dueAt` (ms since the epoch), releasing its reservation in the same step;
   * promoteDue() puts it back on its queue once, when due. Nothing is held in a worker's memory meanwhile.
   */
  defer(delivery: Delivery, dueAt: number): Promise<void>;
  /** Move due parked messages back to their queues; returns how many moved and when the next one is due (or null). */
  promoteDue(limit?: number): Promise<{ moved: number; nextDueAt: number | null }>;
  /** Announce a celeriac worker (a unique instance id) as alive for `ttlMs`; renewed with its leases. */
  heartbeat(instance: string, ttlMs: number): Promise<void>;
  /** The celeriac workers whose heartbeat is still alive, with the time (ms since the epoch) it lapses. */
  workers(): Promise<WorkerPresence[]>;
  /**
   * Withdraw a worker at warm shutdown. When no other celeriac worker is alive, every parked message goes back to
   * its queue (nobody else would promote it, and a Python worker can then hold it as Python does).
   */
  leave(instance: string): Promise<{ othersAlive: number; unparked: number }>;
  /**
   * Remember these task ids as revoked for `expiresInMs` (default REVOKE_EXPIRES_MS, 3 hours), for every worker,
   * including those that start later. Expired ids are pruned, and the oldest dropped past `revokesMax`, on write.
   */
  storeRevokes(ids: string[], expiresInMs?: number): Promise<void>;
  /** Those of these ids that are revoked now, each with when its revoke expires (ms since the epoch). */
  revoked(ids: string[]): Promise<Map<string, number>>;
  /** Every live revoked id, with when it expires (ms since the epoch). */
  liveRevokes(): Promise<Map<string, number>>;
  /**
   * One start of the rate-limited task `name`, at most one per `intervalMs` across the broker (stores/rate.ts): a
   * turn to start after `waitMs` (at most `aheadMs`), or no turn and when to ask again.
   */
  rateAcquire(name: string, intervalMs: number, aheadMs: number): Promise<RateTurn>;
  /** Remote control and events, where the broker supports them. */
  readonly control?: ControlChannel;
  /**
   * Where the store may drop keys on its own (Redis with a maxmemory-policy other than noeviction): the warning to
   * show, else null. Workers log it at start, `celeriac status` prints it, a producer warns once.
   */
  evictionWarning?(): Promise<string | null>;
  /** The coordination store for beat processes of the app named `name`. */
  beatStore(name: string): BeatStore;
  /** Stop blocking reads so a pending reserve() returns promptly. */
  interrupt(): void;
  close(): Promise<void>;
}

/** A live celeriac worker as its heartbeat records it: `instance` is `<node name>:<pid>:<random>`. */
export interface WorkerPresence {
  instance: string;
  aliveUntil: number;
}

export interface BrokerOptions {
  /** Seconds after which a reservation that was not renewed is recovered (kombu's visibility_timeout for peers that do not renew). */
  visibilityTimeout: number;
  /** Seconds a celeriac worker's reservation lives without renewal; dead workers' messages return after this. */
  leaseTimeout: number;
  /** Name of the dead-letter list. */
  deadLetterQueue: string;
  /** Messages over this many bytes are refused at reservation into the dead letters (default 10 MiB). */
  maxMessageBytes?: number;
  /** Dead letters a list keeps, newest first (default 10,000): older ones are dropped. */
  deadLetterLimit?: number;
  /** Live revoked ids the store keeps (default 50,000, Celery's REVOKES_MAX): those that expire soonest go first. */
  revokesMax?: number;
}

