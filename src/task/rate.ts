/**
 * Celery's rate limit syntax: `'10/s'`, `'100/m'`, `'1000/h'`, or a bare number (per second); `0`, `null` or
 * `''` for none. A rate becomes the interval between two starts in milliseconds: `'20/s'` is 50 ms.
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** The interval between starts in ms, or null for no limit; E_BAD_OPTION for anything else. */
export function rateInterval(rate: unknown, where = 'rateLimit'): number | null {
  if (rate === null || rate === undefined || rate === '' || rate === 0 || rate === '0') return null;
  let count: number;
  let per = 1000;
  if (typeof rate === 'number') {
    count = rate;
  } else if (typeof rate === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
    if (!m) throw badRate(rate, where);
    count = Number(m[1]);
    per = UNIT_MS[m[2] ?? 's'];
  } else {
    throw badRate(rate, where);
  }
  if (!Number.isFinite(count) || count < 0) throw badRate(rate, where);
  return count === 0 ? null : per / count;
}

function badRate(rate: unknown, where: string): CeleriacError {
  return new CeleriacError(ErrorCode.BadOption,
    `${where} must be a rate such as '10/s', '100/m', '1000/h' or a number of tasks per second, got ${JSON.stringify(rate)}`);
}
