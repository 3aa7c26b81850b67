/** URL scheme -> result backend implementation, loaded lazily (see broker/registry.ts). */
import { CeleriacError, ErrorCode } from '../shared/errors.ts';
import { closest } from '../shared/closest.ts';
import { schemeOf } from '../broker/registry.ts';
import type { BackendOptions, ResultBackend } from './backend.ts';

type Loader = () => Promise<(url: string, o: BackendOptions) => ResultBackend>;

const BACKENDS: Record<string, Loader> = {
  redis: async () => {
    const { RedisBackend } = await import('./redis/redis-backend.ts');
    return (url, o) => new RedisBackend(url, o);
  },
  sqlite: async () => {
    const { SqliteBackend } = await import('./sqlite/sqlite-backend.ts');
    return (url, o) => new SqliteBackend(url, o);
  },
  memory: async () => {
    const { MemoryBackend } = await import('./memory/memory-backend.ts');
    return (url, o) => new MemoryBackend(url, o);
  },
};
BACKENDS.rediss = BACKENDS.redis;

export async function createBackend(url: string, options: BackendOptions): Promise<ResultBackend> {
  const scheme = schemeOf(url);
  const loader = BACKENDS[scheme];
  if (!loader) {
    const hint = closest(scheme, Object.keys(BACKENDS));
    throw new CeleriacError(
      ErrorCode.UnknownScheme,
      `unknown result backend scheme "${scheme}://" (known: ${Object.keys(BACKENDS).map((s) => s + '://').join(', ')})` +
        (hint ? `; did you mean "${hint}://"?` : ''),
    );
  }
  return (await loader())(url, options);
}
