/**
 * The default SMS provider: no network, the message goes to an outbox that the page's phone panel lists, so the whole
 * flow works on a laptop. The outbox is a capped list in the cache's store, so a worker in another process (or on
 * another machine, on Redis) delivers to the same outbox the web app reads.
 *
 * Key (raw connection, with the cache's prefix): <prefix>:outbox — newest first, the last 50 messages.
 */
import { randomUUID } from 'node:crypto';
import type { KvConnection } from '../cache/connection.ts';
import type { SmsProvider } from './provider.ts';

export interface OutboxMessage {
  id: string;
  to: string;
  text: string;
  /** ISO time the provider accepted it. */
  at: string;
}

const KEEP = 50;

export class OutboxProvider implements SmsProvider {
  readonly name = 'outbox';
  constructor(private readonly conn: () => KvConnection, private readonly key: string) {}

  async send(to: string, text: string): Promise<{ messageId: string }> {
    const message: OutboxMessage = { id: randomUUID(), to, text, at: new Date().toISOString() };
    await this.conn().lpush(this.key, JSON.stringify(message), KEEP);
    return { messageId: message.id };
  }

  /** Newest first; only those sent to `to` when given. */
  async list(to?: string, limit = 20): Promise<OutboxMessage[]> {
    const all = (await this.conn().lrange(this.key, 0, KEEP - 1)).map((s) => JSON.parse(s) as OutboxMessage);
    return all.filter((m) => to === undefined || m.to === to).slice(0, limit);
  }
}
