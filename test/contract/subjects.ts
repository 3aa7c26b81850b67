/**
 * The stores the contract suites run against — memory://, sqlite:// (a temp file) and redis:// (a real redis-server
 * on a free port) — behind one small interface, so each contract test is written once and run three times.
 *
 * open() gives an implementation on this test's fresh store; other() gives one on the same store through another
 * connection (sqlite: a database connection of its own, as a second process would have), for promises that cross
 * processes (wake-ups, exactly-once). reset() closes what the test opened and moves to a fresh store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker, BrokerOptions } from '../../src/broker/broker.ts';
import { createBroker } from '../../src/broker/registry.ts';
import { SqliteBroker } from '../../src/broker/sqlite/sqlite-broker.ts';
import type { BackendOptions, ResultBackend } from '../../src/backend/backend.ts';
import { createBackend } from '../../src/backend/registry.ts';
import { SqliteBackend } from '../../src/backend/sqlite/sqlite-backend.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

export type Kind = 'memory' | 'sqlite' | 'redis';
export const KINDS: Kind[] = ['memory', 'sqlite', 'redis'];

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  visibilityTimeout: 3600, leaseTimeout: 30, deadLetterQueue: 'celeriac.deadletter',
};

export class Subject {
  redis: RedisServer | null = null;
  private dir = '';
  private n = 0;
  private readonly opened: Array<{ close(): Promise<void> }> = [];

  constructor(readonly kind: Kind) {}

  async setup(): Promise<void> {
    if (this.kind === 'redis') this.redis = await startRedis();
    if (this.kind === 'sqlite') this.dir = mkdtempSync(join(tmpdir(), 'celeriac-contract-'));
  }

  async teardown(): Promise<void> {
    await this.reset();
    await this.redis?.dispose();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Close everything this test opened; the next test gets a fresh store. */
  async reset(): Promise<void> {
    for (const o of this.opened.splice(0).reverse()) await o.close().catch(() => {});
    if (this.redis) await this.redis.flush();
    this.n++;
  }

  url(role: 'broker' | 'backend'): string {
    if (this.kind === 'memory') return `memory://contract-${role}-${this.n}`;
    if (this.kind === 'sqlite') return `sqlite:///${join(this.dir, `t${this.n}.db`)}`;
    return this.redis!.url(role === 'broker' ? 0 : 1);
  }

  private track<T extends { close(): Promise<void> }>(o: T): T {
    this.opened.push(o);
    return o;
  }

  async broker(o: Partial<BrokerOptions> = {}): Promise<Broker> {
    return this.track(await createBroker(this.url('broker'), { ...DEFAULT_BROKER_OPTIONS, ...o }));
  }

  /** A broker on the same store through another connection. */
  async otherBroker(o: Partial<BrokerOptions> = {}): Promise<Broker> {
    const options = { ...DEFAULT_BROKER_OPTIONS, ...o };
    if (this.kind === 'sqlite') {
      return this.track(new SqliteBroker(this.url('broker'), options, { privateConnection: true }));
    }
    return this.track(await createBroker(this.url('broker'), options));
  }

  async backend(o: Partial<BackendOptions> = {}): Promise<ResultBackend> {
    return this.track(await createBackend(this.url('backend'), { resultExpires: 3600, ...o }));
  }

  async otherBackend(o: Partial<BackendOptions> = {}): Promise<ResultBackend> {
    const options = { resultExpires: 3600, ...o };
    if (this.kind === 'sqlite') {
      return this.track(new SqliteBackend(this.url('backend'), options, { privateConnection: true }));
    }
    return this.track(await createBackend(this.url('backend'), options));
  }
}

/** A protocol-v2-shaped envelope with just what brokers read: delivery tag, priority, delivery info. */
export function envelope(queue: string, tag: string, priority = 0): string {
  return JSON.stringify({
    body: '',
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: { id: tag, task: 'contract.task' },
    properties: {
      correlation_id: tag,
      delivery_tag: tag,
      priority,
      body_encoding: 'base64',
      delivery_mode: 2,
      delivery_info: { exchange: '', routing_key: queue },
    },
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
