/**
 * Beat schedules: `every(...)` (Celery's `schedule`/`timedelta`) and `crontab(...)` (Celery's `crontab`).
 *
 * A schedule answers one question, `next(lastRunMs, fromMs, tz)`: when is the entry next due?
 *   - lastRunMs is the entry's last run, or null when it never ran; then `fromMs` (the time the scheduler first saw
 *     the entry) stands in for it, as Celery's `last_run_at` defaults to "now" when an entry is created: an interval
 *     entry first runs one period after beat starts, a crontab entry at its first match after that (docs/wire-format.md §11:
 *     a 2 s entry was first sent at +2.02 s).
 *   - the answer may lie in the past (a missed tick); the scheduler decides whether to catch up.
 * Crontab fields use Celery's syntax (`*`, `*\/15`, `1-5`, `mon-fri`, `fri-mon` wrapping, lists, numbers, arrays) with
 * Celery's ranges (dayOfWeek 0-6, 0 = Sunday); day-of-month AND day-of-week must both match, as in Celery.
 * Next-run arithmetic, time zones and daylight saving belong to croner: a single time of day (e.g. 09:43) that falls
 * in a spring-forward gap runs once right after the gap and once in a repeated fall-back hour; schedules with a
 * `*` in minute or hour run in real time through both passes of a repeated hour and skip times that do not exist
 * (Vixie cron's rules, croner's `fixedTimeRule: "no-wildcard"`).
 */
import { Cron } from 'croner';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { closest } from '../common/closest.ts';
import type { Schedule } from '../app/beat-schedule.ts';

export type { Schedule };

function bad(message: string): CeleriacError {
  return new CeleriacError(ErrorCode.BadOption, message);
}

function plural(n: number, unit: string): string {
  return n === 1 ? unit : `${n} ${unit}s`;
}

// ---------------------------------------------------------------------------------------------- every

export interface EverySpec {
  seconds?: number;
  minutes?: number;
  hours?: number;
  days?: number;
}

const EVERY_UNITS: Record<keyof EverySpec, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };

export class IntervalSchedule implements Schedule {
  readonly ms: number;
  constructor(readonly seconds: number) {
    this.ms = seconds * 1000;
  }

  next(lastRunMs: number | null, fromMs: number, _tz?: string): number {
    return (lastRunMs ?? fromMs) + this.ms;
  }

  describe(): string {
    const s = this.seconds;
    for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]] as const) {
      if (s >= size && s % size === 0) return `every ${plural(s / size, unit)}`;
    }
    return `every ${plural(s, 'second')}`;
  }
}

/** An interval: plain seconds, or `{ seconds, minutes, hours, days }` added up (Celery's `timedelta`). */
export function every(spec: number | EverySpec): IntervalSchedule {
  let seconds: number;
  if (typeof spec === 'number') {
    seconds = spec;
  } else if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
    seconds = 0;
    for (const [key, value] of Object.entries(spec)) {
      if (value === undefined) continue;
      if (!(key in EVERY_UNITS)) {
        const units = Object.keys(EVERY_UNITS);
        const hint = closest(key, units) ?? units.find((u) => u.startsWith(key.toLowerCase().slice(0, 3))) ?? null;
        throw bad(`every(): unknown unit "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; use seconds, minutes, hours or days`);
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw bad(`every(): ${key} must be a number ≥ 0, got ${JSON.stringify(value)}`);
      }
      seconds += value * EVERY_UNITS[key as keyof EverySpec];
    }
  } else {
    throw bad(`every() takes seconds or { seconds, minutes, hours, days }, got ${JSON.stringify(spec)}`);
  }
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || !(seconds > 0)) {
    throw bad(`every(): the interval must be a positive number of seconds, got ${JSON.stringify(spec)}`);
  }
  return new IntervalSchedule(seconds);
}

// ---------------------------------------------------------------------------------------------- crontab

export type CrontabField = number | string | ReadonlyArray<number | string>;

export interface CrontabSpec {
  minute?: CrontabField;
  hour?: CrontabField;
  dayOfWeek?: CrontabField;
  dayOfMonth?: CrontabField;
  monthOfYear?: CrontabField;
}

type FieldName = keyof CrontabSpec;

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october',
  'november', 'december'];

interface FieldRule {
  min: number;
  max: number;
  /** Names for the values min, min+1, … (weekdays from Sunday, months from January). */
  names?: string[];
  hint: string;
}

const RULES: Record<FieldName, FieldRule> = {
  minute: { min: 0, max: 59, hint: '0-59' },
  hour: { min: 0, max: 23, hint: '0-23' },
  dayOfWeek: { min: 0, max: 6, names: WEEKDAYS, hint: '0-6 with 0 = Sunday, or sun, mon, … sat' },
  dayOfMonth: { min: 1, max: 31, hint: '1-31' },
  monthOfYear: { min: 1, max: 12, names: MONTHS, hint: '1-12, or jan, feb, … dec' },
};
const FIELD_NAMES = Object.keys(RULES) as FieldName[];

interface ParsedField {
  values: number[];
  /** The field as croner reads it. */
  cron: string;
}

function fieldError(field: FieldName, value: unknown, why: string): CeleriacError {
  return bad(`crontab(): ${field} ${JSON.stringify(value)} ${why} (use ${RULES[field].hint}; * , - / as in Celery)`);
}

function parseNumber(field: FieldName, token: string, whole: unknown): number {
  const rule = RULES[field];
  let n: number;
  if (/^\d+$/.test(token)) {
    n = Number(token);
  } else {
    const word = token.toLowerCase();
    const index = rule.names && word.length >= 3 ? rule.names.findIndex((name) => name.startsWith(word)) : -1;
    if (index < 0) throw fieldError(field, whole, `has "${token}", which is not a ${rule.names ? 'name or ' : ''}number`);
    n = rule.min + index;
  }
  if (n < rule.min || n > rule.max) throw fieldError(field, whole, `has ${n}, out of range ${rule.min}-${rule.max}`);
  return n;
}

function expandPart(field: FieldName, part: string, whole: unknown): number[] {
  const { min, max } = RULES[field];
  const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
  if (!m) throw fieldError(field, whole, `has "${part}", which is not *, a value, a range or a step`);
  const step = m[2] === undefined ? 1 : Number(m[2]);
  if (!(step >= 1)) throw fieldError(field, whole, 'has a step of 0');
  let range: number[];
  if (m[1] === '*') {
    range = [];
    for (let v = min; v <= max; v++) range.push(v);
  } else {
    const [a, b] = m[1].split('-');
    const from = parseNumber(field, a, whole);
    if (b === undefined && m[2] !== undefined) {
      throw fieldError(field, whole, `has "${part}": a step needs * or a range before it (e.g. */${m[2]} or ${a}-${max}/${m[2]})`);
    }
    const to = b === undefined ? from : parseNumber(field, b, whole);
    range = [];
    if (to >= from) for (let v = from; v <= to; v++) range.push(v);
    else { // Celery wraps a backwards range round the end: fri-mon is Friday, Saturday, Sunday, Monday
      for (let v = from; v <= max; v++) range.push(v);
      for (let v = min; v <= to; v++) range.push(v);
    }
  }
  return range.filter((_, i) => i % step === 0);
}

function parseField(field: FieldName, value: CrontabField | undefined): ParsedField {
  const { min, max } = RULES[field];
  const raw = value ?? '*';
  let parts: string[];
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw)) throw fieldError(field, raw, 'is not a whole number');
    parts = [String(raw)];
  } else if (typeof raw === 'string') {
    parts = raw.split(',').map((p) => p.trim());
  } else if (Array.isArray(raw)) {
    if (raw.length === 0) throw fieldError(field, raw, 'is an empty list');
    parts = raw.map((item) => {
      if (typeof item === 'number' && Number.isInteger(item)) return String(item);
      if (typeof item === 'string') return item.trim();
      throw fieldError(field, raw, `has ${JSON.stringify(item)}, which is not a whole number or a string`);
    });
  } else {
    throw fieldError(field, raw, 'is not a number, a string or a list');
  }
  const set = new Set<number>();
  for (const part of parts) {
    if (part === '') throw fieldError(field, raw, 'has an empty item');
    for (const v of expandPart(field, part, raw)) set.add(v);
  }
  const values = [...set].sort((a, b) => a - b);
  let cron: string;
  if (values.length === max - min + 1) cron = '*';
  // keep `*/n` as written for minute and hour, so croner treats it as an interval job across daylight-saving changes
  else if ((field === 'minute' || field === 'hour') && parts.length === 1 && /^\*\/\d+$/.test(parts[0])) cron = parts[0];
  else cron = values.join(',');
  return { values, cron };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Values as runs: [1,2,3,4,5] → "1-5", [0,15,30] → "0, 15, 30"; names when given. */
function runs(values: number[], name: (v: number) => string = String): string {
  const out: string[] = [];
  for (let i = 0; i < values.length;) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j] + 1) j++;
    if (j - i >= 2) out.push(`${name(values[i])}-${name(values[j])}`);
    else for (let k = i; k <= j; k++) out.push(name(values[k]));
    i = j + 1;
  }
  return out.join(', ');
}

/** n when values are min, min+n, min+2n, … up to the end of the range (what `*\/n` gives); else null. */
function stepOf(values: number[], min: number, max: number): number | null {
  if (values.length < 2 || values[0] !== min) return null;
  const n = values[1] - values[0];
  for (let i = 1; i < values.length; i++) if (values[i] - values[i - 1] !== n) return null;
  return values[values.length - 1] + n > max ? n : null;
}

const capital = (s: string) => s[0].toUpperCase() + s.slice(1);

export class CrontabSchedule implements Schedule {
  readonly fields: Record<FieldName, number[]>;
  readonly pattern: string;
  private readonly jobs = new Map<string, Cron>();

  constructor(spec: CrontabSpec) {
    const parsed = {} as Record<FieldName, ParsedField>;
    for (const f of FIELD_NAMES) parsed[f] = parseField(f, spec[f]);
    this.fields = {} as Record<FieldName, number[]>;
    for (const f of FIELD_NAMES) this.fields[f] = parsed[f].values;
    const p = parsed;
    this.pattern = `${p.minute.cron} ${p.hour.cron} ${p.dayOfMonth.cron} ${p.monthOfYear.cron} ${p.dayOfWeek.cron}`;
    if (this.job('UTC').nextRun(new Date(0)) === null) {
      throw bad(`crontab(): ${this.describe()} never happens (no month has such a day)`);
    }
  }

  private job(tz: string): Cron {
    let job = this.jobs.get(tz);
    if (!job) {
      try {
        job = new Cron(this.pattern, { timezone: tz, domAndDow: true, mode: '5-part', fixedTimeRule: 'no-wildcard', paused: true });
      } catch (err) {
        throw bad(`crontab(): croner refused "${this.pattern}" in ${tz}: ${(err as Error).message}`);
      }
      this.jobs.set(tz, job);
    }
    return job;
  }

  next(lastRunMs: number | null, fromMs: number, tz: string): number {
    const at = this.job(tz).nextRun(new Date(lastRunMs ?? fromMs));
    return at === null ? Infinity : at.getTime();
  }

  describe(): string {
    const { minute: m, hour: h, dayOfWeek: dow, dayOfMonth: dom, monthOfYear: moy } = this.fields;
    const all = (f: FieldName) => this.fields[f].length === RULES[f].max - RULES[f].min + 1;
    let time: string;
    if (m.length === 1 && h.length === 1) {
      time = `at ${pad2(h[0])}:${pad2(m[0])}`;
    } else if (m.length === 1) {
      const hs = stepOf(h, 0, 23);
      if (all('hour')) time = `every hour at :${pad2(m[0])}`;
      else if (hs) time = `every ${hs} hours at :${pad2(m[0])}`;
      else if (h.length <= 4) time = `at ${h.map((x) => `${pad2(x)}:${pad2(m[0])}`).join(', ')}`;
      else time = `at :${pad2(m[0])} past hours ${runs(h)}`;
    } else {
      const ms = stepOf(m, 0, 59);
      time = all('minute') ? 'every minute' : ms ? `every ${ms} minutes` : `at minutes ${runs(m)}`;
      if (all('hour')) time += time.startsWith('at') ? ' of every hour' : '';
      else time += ` during ${h.length === 1 ? 'hour' : 'hours'} ${runs(h)}`;
    }
    const days: string[] = [];
    if (!all('dayOfWeek')) days.push(`on ${runs(dow, (v) => capital(WEEKDAYS[v]))}`);
    if (!all('dayOfMonth')) {
      days.push(`${days.length ? 'when it is' : 'on'} ${dom.length === 1 ? 'day' : 'days'} ${runs(dom)} of the month`);
    }
    if (!all('monthOfYear')) days.push(`in ${runs(moy, (v) => capital(MONTHS[v - 1]))}`);
    if (days.length === 0) return /^every|every hour$/.test(time) ? time : `${time} every day`;
    return `${time} ${days.join(' ')}`;
  }
}

/** Celery's crontab: each field defaults to `*`; fields take numbers, strings (`*\/15`, `1-5`, `mon-fri`, lists) or arrays. */
export function crontab(spec: CrontabSpec = {}): CrontabSchedule {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw bad(`crontab() takes { minute, hour, dayOfWeek, dayOfMonth, monthOfYear }, got ${JSON.stringify(spec)}`);
  }
  for (const key of Object.keys(spec)) {
    if (!(FIELD_NAMES as string[]).includes(key)) {
      const hint = closest(key, FIELD_NAMES) ?? closest(key.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), FIELD_NAMES);
      throw bad(`crontab(): unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; fields are ${FIELD_NAMES.join(', ')}`);
    }
  }
  return new CrontabSchedule(spec);
}

/** A beatSchedule `schedule` value as a Schedule: plain numbers are seconds (as Celery accepts a `timedelta` or seconds). */
export function toSchedule(value: unknown, where: string): Schedule {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !(value > 0)) throw bad(`${where}: schedule must be a positive number of seconds, got ${value}`);
    return every(value);
  }
  const s = value as Partial<Schedule> | null;
  if (s && typeof s === 'object' && typeof s.next === 'function' && typeof s.describe === 'function') return s as Schedule;
  throw bad(`${where}: schedule must be every(...), crontab(...) or a number of seconds, got ${JSON.stringify(value)}`);
}
