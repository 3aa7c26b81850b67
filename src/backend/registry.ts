/** URL scheme -> result backend implementation, loaded lazily (see broker/registry.ts). */
import { loadForScheme } from '../common/schemes.ts';
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
  return (await loadForScheme('result backend', BACKENDS, url))(url, options);
}
