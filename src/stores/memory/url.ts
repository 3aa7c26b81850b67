/**
 * memory:// URLs: `memory://` and `memory://<name>` name a store that lives in this process; every broker or result
 * backend opened on the same name shares it (query and fragment are ignored).
 */

/** The store name a memory:// URL gives ('' for plain `memory://`). */
export function memoryStoreName(url: string): string {
  return url.replace(/^memory:\/\//i, '').replace(/[?#].*$/, '').replace(/^\/+/, '');
}
