/**
 * Arguments and results travel as JSON (no pickle, ever). `assertJson` rejects at call time what JSON would
 * silently change or drop, so a mistake fails in the caller and not later on a worker.
 * Dates are allowed: they travel as ISO strings, as Celery's JSON encoder sends datetimes. BigInt and the
 * non-finite numbers are allowed too: they travel as Python writes them (common/exact-json.ts).
 */
import { NotJsonError } from './errors.ts';

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return `a function (${(v as Function).name || 'anonymous'})`;
  if (typeof v === 'symbol') return 'a Symbol';
  const ctor = (v as object).constructor?.name;
  return `an instance of ${ctor ?? 'an unknown class'}`;
}

/**
 * Throws NotJsonError for anything JSON would not carry faithfully. Returns an upper bound of the value's size as
 * UTF-8 JSON (every character escaped, every number at its longest), so callers can skip measuring small values.
 */
export function assertJson(value: unknown, what: string): number {
  const seen = new Set<object>();
  let bound = 0;
  const walk = (v: unknown, path: string): void => {
    bound += 8; // separators, quotes, null/true/false
    if (v === null || typeof v === 'boolean') return;
    if (typeof v === 'string') {
      bound += v.length * 6;
      return;
    }
    if (typeof v === 'number' || typeof v === 'bigint') {
      bound += typeof v === 'bigint' ? v.toString().length : 24;
      return;
    }
    if (typeof v !== 'object') throw new NotJsonError(what, path, describe(v));
    if (v instanceof Date) {
      bound += 30;
      return;
    }
    if (seen.has(v)) throw new NotJsonError(what, path, 'a circular reference');
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], `${path}[${i}]`);
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new NotJsonError(what, path, describe(v));
      for (const [k, item] of Object.entries(v)) {
        if (item === undefined) continue; // dropped by JSON, as an absent key
        bound += k.length * 6 + 4;
        walk(item, `${path}.${k}`);
      }
    }
    seen.delete(v);
  };
  walk(value, what);
  return bound;
}
