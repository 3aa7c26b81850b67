/**
 * Celery's Redis result backend (docs/wire-format.md §2.2, §7, §8.5):
 *   celery-task-meta-<id>            string: the task record, SETEX + PUBLISH on the channel of the same name
 *   celery-taskset-meta-<gid>.s/.t/.j  chord header size, extra size, and the join zset
 * Waiting subscribes to the record's channel first and then reads it once, so a record stored in between is not
 * missed; one subscriber connection serves every waiter in the process.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { CeleriacError, ErrorCode, TimeoutError } from '../../common/errors.ts';
import { connectRedis, connectionError } from '../../stores/redis/connection.ts';
import { maskUrl } from '../../stores/redis/url.ts';
import { READY_STATES, decodeResultMeta, encodeResultMeta, resultKey, type ResultMeta } from '../../protocol/index.ts';
import type { BackendOptions, ChordPart, ResultBackend, StoreRequest } from '../backend.ts';
import { STORE_BATCH } from '../../stores/limits.ts';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

interface Scripts {
  celeriacStore(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  celeriacChordPart(j: string, t: string, s: string, score: string, member: string, ttl: number, taskId: string): Promise<string[]>;
}

type Waiter = { taskId: string; resolve: (m: ResultMeta) => void; reject: (e: Error) => void };

const KEY_PREFIX = 'celery-task-meta-';
const chordKey = (gid: string, suffix: 'j' | 't' | 's') => `celery-taskset-meta-${gid}.${suffix}`;

export class RedisBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly client: Redis & Scripts;
  private subscriber: Redis | null = null;
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** One SUBSCRIBE per channel, awaited by every waiter on it (so none reads before it is subscribed). */
  private readonly subscribing = new Map<string, Promise<unknown>>();
  private readonly ttl: number;

  constructor(private readonly url: string, options: BackendOptions) {
    this.displayUrl = maskUrl(url);
    this.ttl = options.resultExpires ?? 0;
    const client = connectRedis(url, { role: 'backend' });
    client.defineCommand('celeriacStore', { lua: lua('store') });
    client.defineCommand('celeriacChordPart', { lua: lua('chord-part'), numberOfKeys: 3 });
    this.client = client as Redis & Scripts;
  }

  async store(entries: StoreRequest[]): Promise<void> {
    try {
      // one script call per batch: the records of a busy worker's finished tasks travel together
      for (let i = 0; i < entries.length; i += STORE_BATCH) {
        const batch = entries.slice(i, i + STORE_BATCH);
        await this.client.celeriacStore(batch.length, ...batch.map((e) => resultKey(e.taskId)), this.ttl,
          ...batch.map((e) => encodeResultMeta(e.meta)));
      }
    } catch (err) {
      throw connectionError(this.client, err);
    }
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    let raw: string | null;
    try {
      raw = await this.client.get(resultKey(taskId));
    } catch (err) {
      throw connectionError(this.client, err);
    }
    return raw === null ? null : decodeResultMeta(raw, taskId);
  }

  async getMany(taskIds: string[]): Promise<(ResultMeta | null)[]> {
    if (taskIds.length === 0) return [];
    const raws = await this.client.mget(...taskIds.map(resultKey));
    return raws.map((raw, i) => (raw === null ? null : decodeResultMeta(raw, taskIds[i])));
  }

  private subscriberConnection(): Redis {
    if (this.subscriber) return this.subscriber;
    const sub = connectRedis(this.url, { role: 'backend-subscriber', blocking: true });
    // records stored while the subscriber was reconnecting were published to nobody: read them again
    let connectedOnce = false;
    sub.on('ready', () => {
      if (connectedOnce) void this.rereadWaited();
      connectedOnce = true;
    });
    sub.on('message', (channel: string, message: string) => {
      const set = this.waiters.get(channel);
      if (!set) return;
      let meta: ResultMeta;
      try {
        meta = decodeResultMeta(message, channel.slice(KEY_PREFIX.length));
      } catch (err) {
        for (const w of set) w.reject(err as Error);
        return;
      }
      if (!READY_STATES.has(meta.status)) return;
      for (const w of set) w.resolve(meta);
    });
    this.subscriber = sub;
    return sub;
  }

  private async rereadWaited(): Promise<void> {
    for (const [channel, set] of this.waiters) {
      const meta = await this.get(channel.slice(KEY_PREFIX.length)).catch(() => null);
      if (meta && READY_STATES.has(meta.status)) for (const w of set) w.resolve(meta);
    }
  }

  async wait(taskId: string, timeoutMs: number): Promise<ResultMeta> {
    const channel = resultKey(taskId);
    const sub = this.subscriberConnection();
    let waiter!: Waiter;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<ResultMeta>((resolve, reject) => {
      waiter = { taskId, resolve, reject };
    });
    let set = this.waiters.get(channel);
    if (!set) {
      set = new Set();
      this.waiters.set(channel, set);
    }
    set.add(waiter);
    const cleanup = () => {
      clearTimeout(timer);
      const s = this.waiters.get(channel);
      if (!s) return;
      s.delete(waiter);
      if (s.size === 0) {
        this.waiters.delete(channel);
        this.subscribing.delete(channel);
        sub.unsubscribe(channel).catch(() => {});
      }
    };
    if (Number.isFinite(timeoutMs)) {
      // armed first: a Redis that cannot be reached must not make a bounded wait hang
      timer = setTimeout(
        () => waiter.reject(new TimeoutError(`no result for task ${taskId} within ${timeoutMs / 1000}s`)),
        timeoutMs,
      );
    }
    try {
      let subscribed = this.subscribing.get(channel);
      if (!subscribed) {
        subscribed = sub.subscribe(channel).catch((err) => Promise.reject(connectionError(sub, err)));
        this.subscribing.set(channel, subscribed);
      }
      const current = await Promise.race([subscribed.then(() => this.get(taskId)), done]);
      if (current && READY_STATES.has((current as ResultMeta).status)) return current as ResultMeta;
      return await done;
    } finally {
      cleanup();
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.client.del(resultKey(taskId));
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    const key = chordKey(groupId, 's');
    const multi = this.client.multi();
    if (this.ttl > 0) multi.setex(key, this.ttl, String(size));
    else multi.set(key, String(size));
    await multi.publish(key, String(size)).exec();
  }

  async chordPartDone(part: ChordPart): Promise<Array<[string, string, unknown]> | null> {
    const member = JSON.stringify([1, part.taskId, part.state, part.result]);
    const score = part.index === null ? 'inf' : String(part.index);
    const members = await this.client.celeriacChordPart(
      chordKey(part.groupId, 'j'), chordKey(part.groupId, 't'), chordKey(part.groupId, 's'), score, member, this.ttl,
      part.taskId,
    );
    if (members.length === 0) return null;
    return members.map((m) => {
      const [, tid, state, result] = JSON.parse(m) as [number, string, string, unknown];
      return [tid, state, result];
    });
  }

  async chordCleanup(groupId: string): Promise<void> {
    await this.client.del(chordKey(groupId, 'j'), chordKey(groupId, 't'), chordKey(groupId, 's'));
  }

  async close(): Promise<void> {
    const closed = new CeleriacError(ErrorCode.Closed, 'the result backend was closed while waiting for a result');
    for (const set of this.waiters.values()) for (const w of set) w.reject(closed);
    // QUIT needs a live connection; one that is down (or reconnecting) is simply dropped
    const quit = (c: Redis) => (c.status === 'ready' ? c.quit().then(() => {}, () => c.disconnect()) : c.disconnect());
    await Promise.all([quit(this.client), this.subscriber ? quit(this.subscriber) : undefined]);
  }
}
