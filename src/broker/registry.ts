/**
 * URL scheme -> broker implementation, loaded lazily so that a scheme's dependencies load only when it is used.
 * An unknown scheme gets an error naming the known ones and the closest match.
 */
import { CeleriacError, ErrorCode } from '../shared/errors.ts';
import { closest } from '../shared/closest.ts';
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

export function schemeOf(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!m) {
    throw new CeleriacError(ErrorCode.BadUrl,
      `"${url}" is not a URL (expected e.g. sqlite://.celeriac/celeriac.db, redis://127.0.0.1:6379/0 or memory://)`);
  }
  return m[1].toLowerCase();
}

export function knownBrokerSchemes(): string[] {
  return Object.keys(BROKERS);
}

export async function createBroker(url: string, options: BrokerOptions): Promise<Broker> {
  const scheme = schemeOf(url);
  const loader = BROKERS[scheme];
  if (!loader) {
    const hint = closest(scheme, Object.keys(BROKERS));
    throw new CeleriacError(
      ErrorCode.UnknownScheme,
      `unknown broker scheme "${scheme}://" (known: ${Object.keys(BROKERS).map((s) => s + '://').join(', ')})` +
        (hint ? `; did you mean "${hint}://"?` : ''),
    );
  }
  return (await loader())(url, options);
}
