/**
 * URL scheme -> broker implementation, loaded lazily so that a scheme's dependencies load only when it is used.
 * An unknown scheme gets an error naming the known ones and the closest match.
 */
import { loadForScheme } from '../common/schemes.ts';
import type { Broker, BrokerOptions } from './broker.ts';

type Loader = () => Promise<(url: string, o: BrokerOptions) => Broker>;

const BROKERS: Record<string, Loader> = {
  redis: async () => {
    const { RedisBroker } = await import('./redis/redis-broker.ts');
    return (url, o) => new RedisBroker(url, o);
  },
  sqlite: async () => {
    const { SqliteBroker } = await import('./sqlite/sqlite-broker.ts');
    return (url, o) => new SqliteBroker(url, o);
  },
  memory: async () => {
    const { MemoryBroker } = await import('./memory/memory-broker.ts');
    return (url, o) => new MemoryBroker(url, o);
  },
};
BROKERS.rediss = BROKERS.redis;

export async function createBroker(url: string, options: BrokerOptions): Promise<Broker> {
  return (await loadForScheme('broker', BROKERS, url))(url, options);
}
