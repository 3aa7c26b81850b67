/**
 * Celery's Redis result backend (docs/wire-format.md §2.2, §7, §8.5):
 *   celery-task-meta-<id>            string: the task record, SETEX + PUBLISH on the channel of the same name
 *   celery-taskset-meta-<gid>.s/.t/.j  chord header size, extra size, and the join zset
 * Waiting subscribes to the record's channel first and then reads it once, so a record stored in between is not
 * missed; one subscriber connection serves every waiter in the process.
 */
import type { Redis } from 'ioredis';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';
import { closeRedis, connectRedis, connectionError } from '../../stores/redis/connection.ts';
import { loadLua } from '../../stores/redis/lua.ts';
import { maskUrl } from '../../stores/redis/url.ts';
import { RESULT_KEY_PREFIX, decodeResultMeta, encodeResultMeta, resultKey, type ResultMeta } from '../../protocol/index.ts';
import type { BackendOptions, ChordPart, ResultBackend, StoreRequest } from '../backend.ts';
import { STORE_BATCH } from '../../stores/limits.ts';
import { ResultWaiters } from '../../stores/waiters.ts';
import { closedError, fromJson, toJson } from '../../stores/errors.ts';

const lua = (name: string) => loadLua(import.meta.url, name);

interface Scripts {
  celeriacStore(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  celeriacChordPart(j: string, t: string, s: string, score: string, member: string, ttl: number, taskId: string): Promise<string[]>;
}

const chordKey = (gid: string, suffix: 'j' | 't' | 's') => `celery-taskset-meta-${gid}.${suffix}`;
const groupKey = (gid: string) => `celery-taskset-meta-${gid}`;

/** A join member `[1, task id, state, result]` (Celery's, §8.5) as [task id, state, result]. */
function readMember(member: string, key: string): [string, string, unknown] {
  const rec = fromJson(member, `a member of ${key}`);
  if (!Array.isArray(rec) || typeof rec[1] !== 'string' || typeof rec[2] !== 'string') {
    throw new CeleriacError(ErrorCode.MalformedMessage, `a member of ${key} is not [1, task id, state, result]: ${member.slice(0, 200)}`);
  }
  return [rec[1], rec[2], rec[3] ?? null];
}

export class RedisBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly client: Redis & Scripts;
  private subscriber: Redis | null = null;
  /** One SUBSCRIBE per waited record's channel, awaited by every waiter on it (so none reads before it is subscribed). */
  private readonly subscribing = new Map<string, Promise<unknown>>();
  private readonly waiters = new ResultWaiters({
    firstOn: (taskId) => {
      const sub = this.subscriberConnection();
      const channel = resultKey(taskId);
      this.subscribing.set(taskId, sub.subscribe(channel).catch((err) => Promise.reject(connectionError(sub, err))));
    },
    lastOn: (taskId) => {
      this.subscribing.delete(taskId);
      this.subscriber?.unsubscribe(resultKey(taskId)).catch(() => {});
    },
  });
  private readonly ttl: number;
  private closed = false;

  constructor(private readonly url: string, options: BackendOptions) {
    this.displayUrl = maskUrl(url);
    this.ttl = options.resultExpires ?? 0;
    const client = connectRedis(url, { role: 'backend' });
    client.defineCommand('celeriacStore', { lua: lua('store') });
    client.defineCommand('celeriacChordPart', { lua: lua('chord-part'), numberOfKeys: 3 });
    this.client = client as Redis & Scripts;
  }

  /** Every call: E_CLOSED after close(), and any failure as one coded error (stores/redis/connection.ts). */
  private async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError('result backend', this.displayUrl);
    try {
      return await fn();
    } catch (err) {
      throw connectionError(this.client, err);
    }
  }

  store(entries: StoreRequest[]): Promise<void> {
    return this.use(async () => {
      // one script call per batch: the records of a busy worker's finished tasks travel together
      for (let i = 0; i < entries.length; i += STORE_BATCH) {
        const batch = entries.slice(i, i + STORE_BATCH);
        await this.client.celeriacStore(batch.length, ...batch.map((e) => resultKey(e.taskId)), this.ttl,
          ...batch.map((e) => encodeResultMeta(e.meta)));
      }
    });
  }

  get(taskId: string): Promise<ResultMeta | null> {
    return this.use(async () => {
      const raw = await this.client.get(resultKey(taskId));
      return raw === null ? null : decodeResultMeta(raw, taskId);
    });
  }

  getMany(taskIds: string[]): Promise<(ResultMeta | null)[]> {
    return this.use(async () => {
      if (taskIds.length === 0) return [];
      const raws = await this.client.mget(...taskIds.map(resultKey));
      return raws.map((raw, i) => (raw === null ? null : decodeResultMeta(raw, taskIds[i])));
    });
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
      if (channel.startsWith(RESULT_KEY_PREFIX)) this.waiters.settleRecord(channel.slice(RESULT_KEY_PREFIX.length), message);
    });
    this.subscriber = sub;
    return sub;
  }

  private async rereadWaited(): Promise<void> {
    for (const taskId of this.waiters.ids()) {
      const meta = await this.get(taskId).catch(() => null);
      if (meta) this.waiters.settle(taskId, meta);
    }
  }

  /** Subscribe to the record's channel (once per id, in the waiters' firstOn hook), then read it once. */
  async wait(taskId: string, timeoutMs: number): Promise<ResultMeta> {
    if (this.closed) throw closedError('result backend', this.displayUrl);
    return this.waiters.wait(taskId, timeoutMs, async () => {
      await this.subscribing.get(taskId);
      return this.get(taskId);
    });
  }

  forget(taskId: string): Promise<void> {
    return this.use(async () => {
      await this.client.del(resultKey(taskId));
    });
  }

  saveGroup(groupId: string, tuple: unknown): Promise<void> {
    return this.use(async () => {
      const value = toJson({ result: tuple }, `group ${groupId}`);
      if (this.ttl > 0) await this.client.setex(groupKey(groupId), this.ttl, value);
      else await this.client.set(groupKey(groupId), value);
    });
  }

  restoreGroup(groupId: string): Promise<unknown | null> {
    return this.use(async () => {
      const raw = await this.client.get(groupKey(groupId));
      if (raw === null) return null;
      return (fromJson(raw, `group ${groupId}`) as { result?: unknown })?.result ?? null;
    });
  }

  deleteGroup(groupId: string): Promise<void> {
    return this.use(async () => {
      await this.client.del(groupKey(groupId));
    });
  }

  setChordSize(groupId: string, size: number): Promise<void> {
    return this.use(async () => {
      const key = chordKey(groupId, 's');
      const multi = this.client.multi();
      if (this.ttl > 0) multi.setex(key, this.ttl, String(size));
      else multi.set(key, String(size));
      await multi.publish(key, String(size)).exec();
    });
  }

  chordPartDone(part: ChordPart): Promise<Array<[string, string, unknown]> | null> {
    return this.use(async () => {
      const member = toJson([1, part.taskId, part.state, part.result], `the result of chord part ${part.taskId}`);
      const score = part.index === null ? 'inf' : String(part.index);
      const members = await this.client.celeriacChordPart(
        chordKey(part.groupId, 'j'), chordKey(part.groupId, 't'), chordKey(part.groupId, 's'), score, member, this.ttl,
        part.taskId,
      );
      if (members.length === 0) return null;
      return members.map((m) => readMember(m, chordKey(part.groupId, 'j')));
    });
  }

  chordCleanup(groupId: string): Promise<void> {
    return this.use(async () => {
      await this.client.del(chordKey(groupId, 'j'), chordKey(groupId, 't'), chordKey(groupId, 's'));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiters.closeAll();
    await Promise.all([closeRedis(this.client), this.subscriber ? closeRedis(this.subscriber) : undefined]);
  }
}
