/**
 * The home page's banners, served from the cache (Django's `cache.get('banner_list')`): the database is read when
 * the cache is empty (cache-aside, so a fresh start shows banners at once) and by the `update_banner` task that beat
 * sends every minute, which rewrites the cached list without a TTL (beat keeps it fresh; a stale list is better than
 * none if beat stops).
 *
 * Keys: banner_list -> { banners: Banner[], refreshedAt: ISO string } (cache prefix and version apply).
 * Tables read: banners (see db.ts).
 */
import type { Cache } from './cache/cache.ts';
import type { AppDb } from './db.ts';

export interface Banner {
  id: number;
  title: string;
  subtitle: string;
  link: string;
  color: string;
}

export interface BannerList {
  banners: Banner[];
  refreshedAt: string;
}

export const BANNER_KEY = 'banner_list';

export class BannerService {
  private readonly query;
  constructor(db: AppDb, private readonly cache: Cache) {
    this.query = db.prepare<[], Banner>(
      'SELECT id, title, subtitle, link, color FROM banners WHERE active = 1 ORDER BY position, id LIMIT 10');
  }

  /** Read the database and rewrite the cached list (what update_banner does). */
  async refresh(): Promise<BannerList> {
    const list: BannerList = { banners: this.query.all(), refreshedAt: new Date().toISOString() };
    await this.cache.set(BANNER_KEY, list, null);
    return list;
  }

  /** The cached list, or (cache empty) the database's, which is then cached. */
  async list(): Promise<BannerList & { source: 'cache' | 'database' }> {
    const cached = await this.cache.get<BannerList>(BANNER_KEY);
    if (cached) return { ...cached, source: 'cache' };
    return { ...(await this.refresh()), source: 'database' };
  }
}
