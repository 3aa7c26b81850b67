/**
 * URL scheme -> implementation tables for brokers and backends: the scheme is read once, and an unknown one gets an
 * error naming the known schemes and the closest match ("did you mean").
 */
import { CeleriacError, ErrorCode } from './errors.ts';
import { closest } from './closest.ts';

export function schemeOf(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!m) {
    throw new CeleriacError(ErrorCode.BadUrl,
      `"${url}" is not a URL (expected e.g. sqlite://.celeriac/celeriac.db, redis://127.0.0.1:6379/0 or memory://)`);
  }
  return m[1].toLowerCase();
}

/** Load the implementation registered for `url`'s scheme in `table` (loaders import lazily). */
export async function loadForScheme<T>(what: string, table: Record<string, () => Promise<T>>, url: string): Promise<T> {
  const scheme = schemeOf(url);
  const loader = table[scheme];
  if (!loader) {
    const known = Object.keys(table);
    const hint = closest(scheme, known);
    throw new CeleriacError(ErrorCode.UnknownScheme,
      `unknown ${what} scheme "${scheme}://" (known: ${known.map((s) => s + '://').join(', ')})` +
        (hint ? `; did you mean "${hint}://"?` : ''));
  }
  return loader();
}
