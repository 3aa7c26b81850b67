/**
 * The Redis broker: kombu's layout (keys.ts) so Python Celery producers and workers share the queues.
 *
 * Reservation: a Lua script pops a batch band-major and records each message in `unacked`/`unacked_index`
 * (kombu's bookkeeping, so Python peers can recover it) and in `celeriac.leases` (our short lease) in one step.
 * When nothing is ready it waits (the loop of stores/reserve-wait.ts) for a wake-up on `celeriac.wake.<db>.<queue>`
 * (published by celeriac producers, the ETA promoter and restores) or a short poll for messages other producers
 * (Python) pushed, trying the script again after each, until a message comes or waitMs passes. A blocking pop is never
 * used: a popped message whose reply is lost with the connection (a Redis restart) would be lost for good.
 * Recovery brings back (a) our reservations whose lease ran out — a dead celeriac worker's — and (b) any
 * reservation older than the visibility timeout that nobody renewed — a dead Python worker's, as kombu would.
 */
import type { Redis } from 'ioredis';
import type {
  BeatStore, Broker, BrokerOptions, DeadLetter, Delivery, OutgoingMessage, Rejected, ReserveResult, WorkerPresence,
} from '../broker.ts';
import { closeRedis, connectRedis, connectionError, evictionWarning } from '../../stores/redis/connection.ts';
import { closedError } from '../../stores/errors.ts';
import type { RateTurn } from '../../stores/rate.ts';
import {
  ETA, WORKERS, LEASES, REVOKED, UNACKED, UNACKED_INDEX, allBandKeys, beatKeys, parkedMember, bandMajorKeys, bindingKey, bindingMember, queueListKey, SEP,
  rateKey, wakePrefix,
} from './keys.ts';
import { defineBrokerScripts, type BrokerScripts } from './scripts.ts';
import { maskUrl, redisOptionsFromUrl } from '../../stores/redis/url.ts';
import { priorityOf, redelivered } from '../envelope.ts';
import { RedisControl } from './control.ts';
import {
  DEAD_LETTER_HEAD_BYTES, DEAD_LETTERS_KEPT, DEAD_LETTERS_LIMIT, MAX_MESSAGE_BYTES, PROMOTE_BATCH, RECOVER_BATCH,
  REVOKE_EXPIRES_MS, REVOKES_MAX,
} from '../../stores/limits.ts';
import { deadLetterEntry, parseDeadLetter } from '../../stores/dead-letter.ts';
import { PendingWaits, reserveOrWait } from '../../stores/reserve-wait.ts';

/** How often an idle consumer looks for messages that arrived without a wake-up (e.g. from Python producers). */
const POLL_MS = 50;
/** Task ids per revoke script call or lookup pipeline. */
const REVOKE_CHUNK = 1000;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class RedisBroker implements Broker {
  readonly displayUrl: string;
  readonly control: RedisControl;
  private readonly client: Redis & BrokerScripts;
  private subscriber: Redis | null = null;
  private readonly subscribed = new Set<string>();
  /** The change signal of waiting reserve() calls: told of every wake-up message. */
  private readonly wakeListeners = new Set<() => void>();
  private readonly waits = new PendingWaits();
  private readonly wakePrefix: string;
  private readonly declared = new Set<string>();
  private readonly outbox: Array<{ messages: OutgoingMessage[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  private closed = false;
  /** The eviction policy is looked at once: by a worker's start, `celeriac status`, or else a producer's first publish. */
  private evictionChecked = false;

  constructor(private readonly url: string, private readonly options: BrokerOptions) {
    this.displayUrl = maskUrl(url);
    const db = redisOptionsFromUrl(url).db ?? 0;
    this.wakePrefix = wakePrefix(db);
    this.client = defineBrokerScripts(connectRedis(url, { role: 'broker' }));
    this.control = new RedisControl(url, this.client, db, (fn) => this.use(fn));
  }

  private wakeChannel(queue: string): string {
    return this.wakePrefix + queue;
  }

  private async subscribe(queues: string[]): Promise<void> {
    if (!this.subscriber) {
      const sub = connectRedis(this.url, { role: 'broker-wake', blocking: true });
      sub.on('message', () => this.wake());
      this.subscriber = sub;
    }
    const fresh = queues.filter((q) => !this.subscribed.has(q));
    if (fresh.length === 0) return;
    await this.subscriber.subscribe(...fresh.map((q) => this.wakeChannel(q)));
    for (const q of fresh) this.subscribed.add(q);
  }

  private wake(): void {
    for (const l of [...this.wakeListeners]) l();
  }

  /** Wake-ups on the subscribed queues' channels, and a poll every POLL_MS for messages pushed without one. */
  private onChange(wake: () => void): () => void {
    this.wakeListeners.add(wake);
    const poll = setInterval(wake, POLL_MS);
    return () => {
      clearInterval(poll);
      this.wakeListeners.delete(wake);
    };
  }

  private get dlq(): string {
    return this.options.deadLetterQueue;
  }

  private get dlqKept(): number {
    return this.options.deadLetterLimit ?? DEAD_LETTERS_KEPT;
  }

  /** Every call: E_CLOSED after close(), and any failure as one coded error (stores/redis/connection.ts). */
  private async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError('broker', this.displayUrl);
    try {
      return await fn();
    } catch (err) {
      throw connectionError(this.client, err);
    }
  }

  declareQueues(queues: string[]): Promise<void> {
    return this.use(async () => {
      const fresh = queues.filter((q) => !this.declared.has(q));
      if (fresh.length === 0) return;
      await Promise.all(fresh.map((q) => this.client.sadd(bindingKey(q), bindingMember(q, q))));
      for (const q of fresh) this.declared.add(q);
    });
  }

  /**
   * Calls made in the same turn of the event loop (a producer calling delay() in a loop, a web server under load)
   * travel as one pipeline with one wake-up per queue: auto-pipelining of single calls, done here rather than by
   * ioredis so that each caller still learns whether its own messages were stored.
   */
  publish(messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) return Promise.reject(closedError('broker', this.displayUrl));
    return new Promise((resolve, reject) => {
      this.outbox.push({ messages, resolve, reject });
      if (this.outbox.length === 1) queueMicrotask(() => void this.flushOutbox());
    });
  }

  /** The warning for a Redis that may evict keys, or null (stores/redis/connection.ts). A worker logs it. */
  evictionWarning(): Promise<string | null> {
    this.evictionChecked = true;
    return evictionWarning(this.client);
  }

  /** A producer's first publish: warn once (process warning E_EVICTION_POLICY) when Redis may evict queue keys. */
  private checkEvictionOnce(): Promise<void> | undefined {
    if (this.evictionChecked) return undefined;
    return this.evictionWarning().then((w) => {
      if (w) process.emitWarning(w, { code: 'E_EVICTION_POLICY' });
    });
  }

  private async flushOutbox(): Promise<void> {
    const batch = this.outbox.splice(0);
    const checking = this.checkEvictionOnce();
    let replies: [Error | null, unknown][];
    try {
      await this.declareQueues([...new Set(batch.flatMap((b) => b.messages.map((m) => m.queue)))]);
      const now = Date.now();
      const pipe = this.client.pipeline();
      const woken = new Set<string>();
      for (const b of batch) {
        for (const m of b.messages) {
          if (m.dueAt && m.dueAt > now) {
            pipe.zadd(ETA, m.dueAt, parkedMember(m.queue, m.priority, m.raw));
          } else {
            pipe.lpush(queueListKey(m.queue, m.priority), m.raw);
            woken.add(m.queue);
          }
        }
      }
      for (const q of woken) pipe.publish(this.wakeChannel(q), '');
      replies = ((await pipe.exec()) ?? []) as [Error | null, unknown][];
      await checking;
    } catch (err) {
      const failure = connectionError(this.client, err);
      for (const b of batch) b.reject(failure);
      return;
    }
    // each caller learns about its own commands only (a lost wake-up is not a failure: consumers also poll)
    let at = 0;
    for (const b of batch) {
      const failed = replies.slice(at, at + b.messages.length).find(([e]) => e);
      at += b.messages.length;
      if (failed) b.reject(connectionError(this.client, failed[0]));
      else b.resolve();
    }
  }

  private clock() {
    const nowMs = Date.now();
    return { ms: nowMs, now: nowMs / 1000, leaseUntil: nowMs / 1000 + this.options.leaseTimeout, iso: new Date(nowMs).toISOString() };
  }

  private static parseReserved(flat: string[]): ReserveResult {
    const out: ReserveResult = { deliveries: [], rejected: [] };
    for (let i = 0; i < flat.length; i += 5) {
      if (flat[i] === 'R') out.deliveries.push({ queue: flat[i + 1], tag: flat[i + 2], raw: flat[i + 3] });
      else {
        const r: Rejected = { queue: flat[i + 1], reason: flat[i + 2], raw: flat[i + 3] };
        if (flat[i + 4]) r.taskId = flat[i + 4];
        out.rejected.push(r);
      }
    }
    return out;
  }

  reserve(queues: string[], max: number, waitMs: number): Promise<ReserveResult> {
    return this.use(async () => {
      if (waitMs > 0) await this.subscribe(queues);
      return reserveOrWait({
        tryReserve: () => this.reserveReady(queues, max),
        onChange: (wake) => this.onChange(wake),
        waitMs,
        waits: this.waits,
        closed: () => this.closed,
      });
    });
  }

  private async reserveReady(queues: string[], max: number): Promise<ReserveResult> {
    const { keys, names } = bandMajorKeys(queues);
    const c = this.clock();
    const flat = await this.client.celeriacReserve(
      keys.length + 4, UNACKED, UNACKED_INDEX, LEASES, this.dlq, ...keys, max, c.now, c.leaseUntil, c.iso,
      this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES, this.dlqKept, DEAD_LETTER_HEAD_BYTES, ...names,
    );
    return RedisBroker.parseReserved(flat);
  }

  ack(tags: string[]): Promise<void> {
    return this.use(async () => {
      if (tags.length === 0) return;
      await this.client.celeriacAck(UNACKED, UNACKED_INDEX, LEASES, ...tags);
    });
  }

  renew(tags: string[]): Promise<void> {
    return this.use(async () => {
      if (tags.length === 0) return;
      const c = this.clock();
      await this.client.celeriacRenew(LEASES, UNACKED_INDEX, c.leaseUntil, c.now, ...tags);
    });
  }

  requeue(deliveries: Delivery[]): Promise<void> {
    return this.use(async () => {
      await Promise.all(deliveries.map((d) => this.restore(d.tag, d.raw, d.queue, 'owner')));
    });
  }

  private async restore(tag: string, raw: string, queue: string, mode: 'owner' | 'lease' | 'visibility'): Promise<boolean> {
    const c = this.clock();
    const target = queueListKey(queue, priorityOf(raw));
    const n = await this.client.celeriacRestore(
      UNACKED, UNACKED_INDEX, LEASES, target, tag, redelivered(raw, mode !== 'owner'), mode, c.now, c.now - this.options.visibilityTimeout,
      this.wakeChannel(queue),
    );
    return n === 1;
  }

  /** kombu resolves the queue of a restored message from its [exchange, routing_key] through the bindings. */
  private async queueFor(exchange: string, routingKey: string): Promise<string> {
    if (!exchange) return routingKey;
    const members = await this.client.smembers(bindingKey(exchange));
    for (const m of members) {
      const [rk, , queue] = m.split(SEP);
      if (rk === routingKey || rk === '') return queue;
    }
    return routingKey;
  }

  /** kombu's unacked entry `[envelope, exchange, routing_key]`, or null when it cannot be read. */
  private static readUnacked(entry: string): { raw: string; exchange: string; routingKey: string } | null {
    try {
      const [env, exchange, routingKey] = JSON.parse(entry);
      const raw = JSON.stringify(env);
      return typeof raw === 'string' ? { raw, exchange: String(exchange ?? ''), routingKey: String(routingKey ?? '') } : null;
    } catch {
      return null;
    }
  }

  recover(): Promise<number> {
    return this.use(async () => {
      const c = this.clock();
      const [leased, stale] = await Promise.all([
        this.client.zrangebyscore(LEASES, '-inf', c.now, 'LIMIT', 0, RECOVER_BATCH),
        this.client.zrangebyscore(UNACKED_INDEX, '-inf', c.now - this.options.visibilityTimeout, 'LIMIT', 0, RECOVER_BATCH),
      ]);
      const work: [string, 'lease' | 'visibility'][] = [
        ...leased.map((t) => [t, 'lease'] as [string, 'lease']),
        ...stale.filter((t) => !leased.includes(t)).map((t) => [t, 'visibility'] as [string, 'visibility']),
      ];
      let restored = 0;
      for (const [tag, mode] of work) {
        const entry = await this.client.hget(UNACKED, tag);
        if (entry === null) {
          await this.client.multi().zrem(LEASES, tag).zrem(UNACKED_INDEX, tag).exec();
          continue;
        }
        const read = RedisBroker.readUnacked(entry);
        if (!read) {
          // an unacked entry we cannot read: set it aside rather than loop over it for ever
          await this.client.multi()
            .lpush(this.dlq, JSON.stringify(deadLetterEntry('unreadable unacked entry', '', entry, c.ms)))
            .ltrim(this.dlq, 0, this.dlqKept - 1)
            .hdel(UNACKED, tag).zrem(UNACKED_INDEX, tag).zrem(LEASES, tag).exec();
          continue;
        }
        // a failure to read the bindings is a failure of this call, not a reason to set the message aside
        const queue = await this.queueFor(read.exchange, read.routingKey);
        if (await this.restore(tag, read.raw, queue, mode)) restored++;
      }
      return restored;
    });
  }

  deadLetter(delivery: Delivery, reason: string): Promise<void> {
    return this.use(async () => {
      const entry = JSON.stringify(deadLetterEntry(reason, delivery.queue, delivery.raw));
      await this.client.multi()
        .lpush(this.dlq, entry).ltrim(this.dlq, 0, this.dlqKept - 1).hdel(UNACKED, delivery.tag).zrem(UNACKED_INDEX, delivery.tag).zrem(LEASES, delivery.tag)
        .exec();
    });
  }

  deadLetters(limit = DEAD_LETTERS_LIMIT): Promise<DeadLetter[]> {
    return this.use(async () => {
      const items = await this.client.lrange(this.dlq, 0, limit - 1);
      return items.map((s) => parseDeadLetter(s, this.dlq));
    });
  }

  purge(queues: string[]): Promise<number> {
    return this.use(async () => {
      const keys = queues.flatMap(allBandKeys);
      const multi = this.client.multi();
      for (const k of keys) multi.llen(k);
      multi.del(...keys);
      const replies = (await multi.exec()) ?? [];
      return replies.slice(0, keys.length).reduce((sum, [, n]) => sum + Number(n), 0);
    });
  }

  queueLength(queue: string): Promise<number> {
    return this.use(async () => {
      const lens = await Promise.all(allBandKeys(queue).map((k) => this.client.llen(k)));
      return lens.reduce((a, b) => a + b, 0);
    });
  }

  defer(delivery: Delivery, dueAt: number): Promise<void> {
    return this.use(async () => {
      await this.client.celeriacDefer(UNACKED, UNACKED_INDEX, LEASES, ETA, delivery.tag, Math.round(dueAt),
        parkedMember(delivery.queue, priorityOf(delivery.raw), delivery.raw));
    });
  }

  promoteDue(limit = PROMOTE_BATCH): Promise<{ moved: number; nextDueAt: number | null }> {
    return this.use(async () => {
      const [moved, next] = await this.client.celeriacPromote(ETA, Date.now(), limit, this.wakePrefix);
      return { moved: Number(moved), nextDueAt: Number(next) >= 0 ? Number(next) : null };
    });
  }

  heartbeat(instance: string, ttlMs: number): Promise<void> {
    return this.use(async () => {
      await this.client.zadd(WORKERS, Date.now() + ttlMs, instance);
    });
  }

  workers(): Promise<WorkerPresence[]> {
    return this.use(async () => {
      const flat = await this.client.zrangebyscore(WORKERS, Date.now(), '+inf', 'WITHSCORES');
      const out: WorkerPresence[] = [];
      for (let i = 0; i < flat.length; i += 2) out.push({ instance: flat[i], aliveUntil: Number(flat[i + 1]) });
      return out;
    });
  }

  leave(instance: string): Promise<{ othersAlive: number; unparked: number }> {
    return this.use(async () => {
      const [othersAlive, unparked] = await this.client.celeriacLeave(WORKERS, ETA, instance, Date.now(), this.wakePrefix);
      return { othersAlive: Number(othersAlive), unparked: Number(unparked) };
    });
  }

  rateAcquire(name: string, intervalMs: number, aheadMs: number): Promise<RateTurn> {
    return this.use(async () => {
      const [reserved, wait] = await this.client.celeriacRate(rateKey(name), intervalMs, aheadMs);
      return { reserved: Number(reserved) === 1, waitMs: Number(wait) };
    });
  }

  storeRevokes(ids: string[], expiresInMs = REVOKE_EXPIRES_MS): Promise<void> {
    return this.use(async () => {
      const now = Date.now();
      const until = now + Math.round(expiresInMs);
      const max = this.options.revokesMax ?? REVOKES_MAX;
      for (const part of chunks([...new Set(ids)], REVOKE_CHUNK)) await this.client.celeriacRevoke(REVOKED, now, until, max, ...part);
    });
  }

  revoked(ids: string[]): Promise<Map<string, number>> {
    return this.use(async () => {
      const now = Date.now();
      const out = new Map<string, number>();
      // one ZMSCORE per chunk: a reserved batch costs one command, not one per message
      for (const part of chunks(ids, REVOKE_CHUNK)) {
        const scores = (await this.client.zmscore(REVOKED, ...part)) as (string | null)[];
        scores.forEach((score, i) => {
          if (score !== null && Number(score) > now) out.set(part[i], Number(score));
        });
      }
      return out;
    });
  }

  liveRevokes(): Promise<Map<string, number>> {
    return this.use(async () => {
      const flat = await this.client.zrangebyscore(REVOKED, `(${Date.now()}`, '+inf', 'WITHSCORES');
      const out = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) out.set(flat[i], Number(flat[i + 1]));
      return out;
    });
  }

  beatStore(name: string): BeatStore {
    const keys = beatKeys(name);
    const client = this.client;
    return {
      acquire: (owner, ttlMs) => this.use(async () => (await client.celeriacLock(keys.lock, owner, Math.round(ttlMs))) === 1),
      release: (owner) => this.use(async () => {
        await client.celeriacUnlock(keys.lock, owner);
      }),
      lastRuns: () => this.use(async () => {
        const all = await client.hgetall(keys.state);
        return new Map(Object.entries(all).map(([k, v]) => [k, Number(v)]));
      }),
      fire: (owner, entry, expected, runAt, m) => this.use(async () => {
        await this.declareQueues([m.queue]);
        const sent = await client.celeriacBeatFire(keys.lock, keys.state, queueListKey(m.queue, m.priority), owner, entry,
          expected === null ? '' : String(expected), String(Math.round(runAt)), m.raw, this.wakeChannel(m.queue));
        return sent === 1;
      }),
      prune: (keep) => this.use(async () => {
        const names = await client.hkeys(keys.state);
        const stale = names.filter((n) => !keep.includes(n));
        if (stale.length > 0) await client.hdel(keys.state, ...stale);
      }),
    };
  }

  interrupt(): void {
    this.waits.interrupt();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.interrupt();
    await Promise.all([closeRedis(this.client), this.subscriber ? closeRedis(this.subscriber) : undefined]);
  }
}
