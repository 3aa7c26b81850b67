/**
 * Celery's two date shapes (docs/wire-format.md §3.5, §7.1):
 * - message `eta`/`expires`: aware ISO-8601, written as Python's isoformat() with "+00:00" and microseconds;
 * - result `date_done`: naive UTC ISO-8601 with microseconds (`datetime.utcnow().isoformat()`).
 *
 * Invariants: parsing accepts the three forms seen on the wire (aware "+HH:MM", "Z", naive read as UTC, the app
 * timezone Python uses by default); anything else is a MalformedMessageError, never a silent Invalid Date.
 * JS dates hold milliseconds, so the last three microsecond digits are dropped when parsing and written as zeros.
 */
import { MalformedMessageError } from '../common/errors.ts';

// Date with optional time; the time part takes an optional fraction and an optional zone (Z or ±HH[:]MM).
const ISO_DATE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}:?\d{2})?)?$/;

function invalid(value: unknown): MalformedMessageError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new MalformedMessageError(`date ${shown} is not an ISO-8601 date`);
}

export function parseCeleryDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(value);
    return new Date(value.getTime());
  }
  if (typeof value !== 'string') throw invalid(value);
  const m = ISO_DATE.exec(value.trim());
  if (!m) throw invalid(value);
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const parts = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)];
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  const utc = Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5], ms);
  const check = new Date(utc);
  // Date.UTC rolls 31 February over into March; Python's datetime() refuses it, and so do we.
  if (
    check.getUTCFullYear() !== parts[0] || check.getUTCMonth() !== parts[1] - 1 || check.getUTCDate() !== parts[2] ||
    check.getUTCHours() !== parts[3] || check.getUTCMinutes() !== parts[4] || check.getUTCSeconds() !== parts[5]
  ) {
    throw invalid(value);
  }
  let offsetMinutes = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const digits = zone.replace(':', '');
    const hours = Number(digits.slice(1, 3));
    const minutes = Number(digits.slice(3, 5));
    if (hours > 23 || minutes > 59) throw invalid(value);
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  return new Date(utc - offsetMinutes * 60_000);
}

/** "2026-11-30T00:40:46.076000+00:00": what Python's aware isoformat() gives for a UTC datetime. */
export function formatCeleryDate(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000+00:00`;
}

/** "2026-11-30T00:39:18.283000": naive UTC, as Python stores `date_done`. */
export function formatNaiveUtc(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000`;
}
