/**
 * Celery's pidbox and events on Redis (docs/wire-format.md §9, §10):
 *   PUBLISH /<db>.celery.pidbox <request>                 requests to every worker (fanout)
 *   _kombu.binding.reply.celery.pidbox                   set: `<oid>\x06\x16\x06\x16<oid>.reply.celery.pidbox`
 *   <oid>.reply.celery.pidbox                            list: replies, LPUSHed by workers, popped by the caller
 *   PUBLISH /<db>.celeryev/<routing key> <event>          worker events
 */
import type { Redis } from 'ioredis';
import { EVERY_LISTENER, type ControlChannel } from '../broker.ts';
import { connectRedis, connectionError } from '../../stores/redis/connection.ts';
import { REPLY_EXCHANGE, SEP, bindingKey, bindingMember, eventChannel, pidboxChannel, replyQueue } from './keys.ts';

/** Runs one call the broker's way: E_CLOSED after the broker closed, any failure as a coded error. */
export type Guard = <T>(fn: () => Promise<T>) => Promise<T>;

export class RedisControl implements ControlChannel {
  readonly pythonPeers = true;
  private readonly pidbox: string;

  constructor(private readonly url: string, private readonly client: Redis, private readonly db: number,
    private readonly use: Guard) {
    this.pidbox = pidboxChannel(db);
  }

  listen(handler: (raw: string) => void): Promise<() => Promise<void>> {
    return this.use(async () => {
      const sub = connectRedis(this.url, { role: 'control', blocking: true });
      let stopped = false;
      sub.on('message', (ch: string, raw: string) => {
        // a message already read from the socket may still come after disconnect(): not for a stopped listener
        if (ch === this.pidbox && !stopped) handler(raw);
      });
      try {
        await sub.subscribe(this.pidbox);
      } catch (err) {
        sub.disconnect();
        throw connectionError(sub, err);
      }
      return async () => {
        stopped = true;
        sub.disconnect();
      };
    });
  }

  reply(routingKey: string, raw: string): Promise<void> {
    return this.use(async () => {
      const members = await this.client.smembers(bindingKey(REPLY_EXCHANGE));
      for (const m of members) {
        const [rk, , queue] = m.split(SEP);
        if (rk === routingKey) await this.client.lpush(queue, raw);
      }
    });
  }

  request(raw: string, replyKey: string | null, timeoutMs: number, expected?: number): Promise<string[]> {
    return this.use(async () => {
      if (!replyKey) {
        await this.client.publish(this.pidbox, raw);
        return [];
      }
      const queue = replyQueue(replyKey);
      const member = bindingMember(replyKey, queue);
      await this.client.sadd(bindingKey(REPLY_EXCHANGE), member);
      const waiter = connectRedis(this.url, { role: 'control-reply', blocking: true });
      const replies: string[] = [];
      try {
        // PUBLISH counts its receivers, pattern subscribers (Python's kombu) included
        const reached = await this.client.publish(this.pidbox, raw);
        const want = expected === EVERY_LISTENER ? reached : expected;
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline && (want === undefined || replies.length < want)) {
          const left = Math.max(0.01, Math.min(1, (deadline - Date.now()) / 1000));
          const got = await waiter.brpop(queue, left);
          if (got) replies.push(got[1]);
        }
      } finally {
        waiter.disconnect();
        await this.client.srem(bindingKey(REPLY_EXCHANGE), member);
        await this.client.del(queue);
      }
      return replies;
    });
  }

  event(routingKey: string, raw: string): Promise<void> {
    return this.use(async () => {
      await this.client.publish(eventChannel(this.db, routingKey), raw);
    });
  }
}
