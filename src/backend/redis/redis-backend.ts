/**
 * Celery's Redis result backend (docs/wire-format.md §2.2, §7, §8.5):
 *   celery-task-meta-<id>            string: the task record, SETEX + PUBLISH on the channel of the same name
 *   celery-taskset-meta-<gid>.s/.t/.j  chord header size, extra size, and the join zset
 * Waiting subscribes to the record's channel first and then reads it once, so a record stored in between is not
 * missed; one subscriber connection serves every waiter in the process.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { connectRedis, connectionError } from '../../stores/redis/connection.ts';
import { maskUrl } from '../../stores/redis/url.ts';
import { RESULT_KEY_PREFIX, decodeResultMeta, encodeResultMeta, resultKey, type ResultMeta } from '../../protocol/index.ts';
import type { BackendOptions, ChordPart, ResultBackend, StoreRequest } from '../backend.ts';
import { STORE_BATCH } from '../../stores/limits.ts';
import { ResultWaiters } from '../../stores/waiters.ts';

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

interface Scripts {
  celeriacStore(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  celeriacChordPart(j: string, t: string, s: string, score: string, member: string, ttl: number, taskId: string): Promise<string[]>;
}

const chordKey = (gid: string, suffix: 'j' | 't' | 's') => `celery-taskset-meta-${gid}.${suffix}`;

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
  wait(taskId: string, timeoutMs: number): Promise<ResultMeta> {
    return this.waiters.wait(taskId, timeoutMs, async () => {
      await this.subscribing.get(taskId);
      return this.get(taskId);
    });
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
    this.waiters.closeAll();
    // QUIT needs a live connection; one that is down (or reconnecting) is simply dropped
    const quit = (c: Redis) => (c.status === 'ready' ? c.quit().then(() => {}, () => c.disconnect()) : c.disconnect());
    await Promise.all([quit(this.client), this.subscriber ? quit(this.subscriber) : undefined]);
  }
}
