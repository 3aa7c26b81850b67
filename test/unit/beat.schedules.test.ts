// Beat schedules with fixed clocks: interval math, crontab next runs in three zones across both 2026 daylight-saving
// changes, Celery's field syntax, the schedule in words, and the errors a mistake gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crontab, every, CeleriacError, ErrorCode, type Schedule } from 'celeriac';
import { CrontabSchedule, IntervalSchedule, toSchedule } from '../../src/beat/schedules.ts';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');

/** The next `n` runs after `fromIso`, each computed from the previous run as beat does. */
function runs(s: Schedule, tz: string, fromIso: string, n: number): string[] {
  const out: string[] = [];
  let last = ms(fromIso);
  for (let i = 0; i < n; i++) {
    last = s.next(last, last, tz);
    out.push(iso(last));
  }
  return out;
}

function badOption(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CeleriacError, `not a CeleriacError: ${String(err)}`);
    assert.equal(err.code, ErrorCode.BadOption);
    assert.match(err.message, pattern);
    return true;
  });
}

// ------------------------------------------------------------------------------------------ intervals

test('every(): plain seconds and { seconds, minutes, hours, days } add up', () => {
  assert.equal(every(60).seconds, 60);
  assert.equal(every({ minutes: 1 }).seconds, 60);
  assert.equal(every({ hours: 1, minutes: 30, seconds: 15 }).seconds, 5415);
  assert.equal(every({ days: 2 }).seconds, 172800);
  assert.equal(every(0.5).ms, 500);
});

test('interval next run: last run + period; an entry that never ran counts from when beat first saw it', () => {
  const s = every({ minutes: 1 });
  assert.equal(s.next(ms('2026-03-08T06:00:00Z'), ms('2026-03-08T09:00:00Z'), 'UTC'), ms('2026-03-08T06:01:00Z'));
  assert.equal(s.next(null, ms('2026-03-08T06:00:00Z'), 'UTC'), ms('2026-03-08T06:01:00Z'), 'Celery: first run one period after start');
  // intervals are real time: a daylight-saving change does not stretch or shrink them
  assert.deepEqual(runs(every({ hours: 1 }), 'America/New_York', '2026-03-08T06:30:00Z', 2), ['2026-03-08T07:30:00Z', '2026-03-08T08:30:00Z']);
});

test('a plain number in beatSchedule means seconds', () => {
  const s = toSchedule(30, 'beatSchedule["x"]');
  assert.ok(s instanceof IntervalSchedule);
  assert.equal((s as IntervalSchedule).seconds, 30);
  const c = crontab({ minute: 5 });
  assert.equal(toSchedule(c, 'x'), c);
});

// ------------------------------------------------------------------------------------------ crontab across DST

const at0943 = () => crontab({ hour: 9, minute: 43 });

test('crontab in America/New_York: 09:43 local across spring forward (Mar 8) and fall back (Nov 1) 2026', () => {
  assert.deepEqual(runs(at0943(), 'America/New_York', '2026-03-06T20:00:00Z', 3),
    ['2026-03-07T14:43:00Z', '2026-03-08T13:43:00Z', '2026-03-09T13:43:00Z'], 'EST -5, then EDT -4: 23 h apart');
  assert.deepEqual(runs(at0943(), 'America/New_York', '2026-10-30T20:00:00Z', 3),
    ['2026-10-31T13:43:00Z', '2026-11-01T14:43:00Z', '2026-11-02T14:43:00Z'], 'EDT, then EST: 25 h apart');
});

test('crontab in America/New_York: a time in the gap runs once right after it, a repeated time runs once', () => {
  assert.deepEqual(runs(crontab({ hour: 2, minute: 30 }), 'America/New_York', '2026-03-07T12:00:00Z', 3),
    ['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z', '2026-03-10T06:30:00Z'], '02:30 does not exist on Mar 8: 03:00 EDT');
  assert.deepEqual(runs(crontab({ hour: 1, minute: 30 }), 'America/New_York', '2026-10-31T12:00:00Z', 2),
    ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z'], '01:30 happens twice on Nov 1: only the first (EDT)');
  assert.deepEqual(runs(crontab({ hour: '1,13', minute: 30 }), 'America/New_York', '2026-10-31T20:00:00Z', 3),
    ['2026-11-01T05:30:00Z', '2026-11-01T18:30:00Z', '2026-11-02T06:30:00Z'], 'a list of fixed times too (Vixie cron)');
  assert.deepEqual(runs(crontab({ hour: '2,14', minute: 30 }), 'America/New_York', '2026-03-07T20:00:00Z', 3),
    ['2026-03-08T07:00:00Z', '2026-03-08T18:30:00Z', '2026-03-09T06:30:00Z'], 'and after the gap');
});

test('crontab in America/New_York: */30 within one hour is a repeating job: both passes of a repeated hour', () => {
  assert.deepEqual(runs(crontab({ hour: 1, minute: '*/30' }), 'America/New_York', '2026-11-01T04:00:00Z', 5),
    ['2026-11-01T05:00:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:30:00Z', '2026-11-02T06:00:00Z']);
});

test('crontab in America/New_York: every 30 minutes keeps real time through both changes', () => {
  assert.deepEqual(runs(crontab({ minute: '*/30' }), 'America/New_York', '2026-11-01T04:50:00Z', 5),
    ['2026-11-01T05:00:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:30:00Z', '2026-11-01T07:00:00Z'],
    'both passes of the repeated 01:00-02:00 hour');
  assert.deepEqual(runs(crontab({ minute: '*/30' }), 'America/New_York', '2026-03-08T06:20:00Z', 3),
    ['2026-03-08T06:30:00Z', '2026-03-08T07:00:00Z', '2026-03-08T07:30:00Z'], '01:30 EST, then 03:00 EDT: 02:xx does not exist');
});

test('crontab in Europe/Berlin: across Mar 29 and Oct 25 2026', () => {
  assert.deepEqual(runs(at0943(), 'Europe/Berlin', '2026-03-27T12:00:00Z', 3),
    ['2026-03-28T08:43:00Z', '2026-03-29T07:43:00Z', '2026-03-30T07:43:00Z'], 'CET +1, then CEST +2');
  assert.deepEqual(runs(at0943(), 'Europe/Berlin', '2026-10-23T12:00:00Z', 3),
    ['2026-10-24T07:43:00Z', '2026-10-25T08:43:00Z', '2026-10-26T08:43:00Z'], 'CEST, then CET');
  assert.deepEqual(runs(crontab({ hour: 2, minute: 30 }), 'Europe/Berlin', '2026-03-28T12:00:00Z', 2),
    ['2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z'], '02:30 does not exist on Mar 29: 03:00 CEST');
  assert.deepEqual(runs(crontab({ hour: 2, minute: 30 }), 'Europe/Berlin', '2026-10-24T12:00:00Z', 2),
    ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'], '02:30 happens twice on Oct 25: only the first (CEST)');
});

test('crontab in Asia/Shanghai: no daylight saving, 09:43 is 01:43 UTC on the same dates', () => {
  for (const from of ['2026-03-06T20:00:00Z', '2026-03-27T12:00:00Z', '2026-10-23T12:00:00Z', '2026-10-30T20:00:00Z']) {
    const got = runs(at0943(), 'Asia/Shanghai', from, 3);
    for (const t of got) assert.match(t, /T01:43:00Z$/);
    assert.equal(ms(got[2]) - ms(got[1]), 86_400_000);
    assert.equal(ms(got[1]) - ms(got[0]), 86_400_000);
  }
  assert.deepEqual(runs(at0943(), 'Asia/Shanghai', '2026-03-08T01:43:00Z', 1), ['2026-03-09T01:43:00Z'],
    'strictly after the last run');
});

test('crontab: an entry that never ran is due at the first match after beat first saw it', () => {
  const s = at0943();
  assert.equal(s.next(null, ms('2026-03-08T01:00:00Z'), 'Asia/Shanghai'), ms('2026-03-08T01:43:00Z'));
  assert.equal(s.next(null, ms('2026-03-08T02:00:00Z'), 'Asia/Shanghai'), ms('2026-03-09T01:43:00Z'));
  assert.equal(s.next(null, ms('2026-03-08T02:00:00Z'), 'UTC'), ms('2026-03-08T09:43:00Z'), 'the zone matters');
});

// ------------------------------------------------------------------------------------------ field syntax

test('field syntax: */15, ranges, steps in ranges, lists, arrays, names, wrapping ranges', () => {
  const f = (spec: Parameters<typeof crontab>[0]) => (crontab(spec) as CrontabSchedule).fields;
  assert.deepEqual(f({ minute: '*/15' }).minute, [0, 15, 30, 45]);
  assert.deepEqual(f({ minute: '0-20/10' }).minute, [0, 10, 20]);
  assert.deepEqual(f({ minute: '0,30' }).minute, [0, 30]);
  assert.deepEqual(f({ minute: [30, '0'] }).minute, [0, 30]);
  assert.deepEqual(f({ hour: '9-17' }).hour, [9, 10, 11, 12, 13, 14, 15, 16, 17]);
  assert.deepEqual(f({ dayOfWeek: 'mon-fri' }).dayOfWeek, [1, 2, 3, 4, 5]);
  assert.deepEqual(f({ dayOfWeek: '1-5' }).dayOfWeek, [1, 2, 3, 4, 5]);
  assert.deepEqual(f({ dayOfWeek: 'Sunday,SAT' }).dayOfWeek, [0, 6], 'names are case-insensitive; full names work');
  assert.deepEqual(f({ dayOfWeek: ['mon', 3] }).dayOfWeek, [1, 3]);
  assert.deepEqual(f({ dayOfWeek: 'fri-mon' }).dayOfWeek, [0, 1, 5, 6], 'Celery wraps a backwards range');
  assert.deepEqual(f({ dayOfWeek: 0 }).dayOfWeek, [0], '0 is Sunday, as in Celery');
  assert.deepEqual(f({ monthOfYear: '*/3' }).monthOfYear, [1, 4, 7, 10]);
  assert.deepEqual(f({ monthOfYear: 'jan,jul' }).monthOfYear, [1, 7]);
  assert.deepEqual(f({ dayOfMonth: '1-7' }).dayOfMonth, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(f({}).minute.length, 60);
});

test('field syntax drives next runs: every 15 minutes, weekdays only, and the weekend is skipped', () => {
  assert.deepEqual(runs(crontab({ minute: '*/15' }), 'UTC', '2026-05-04T10:07:00Z', 3),
    ['2026-05-04T10:15:00Z', '2026-05-04T10:30:00Z', '2026-05-04T10:45:00Z']);
  // Friday 2026-05-08 17:00 -> Monday 2026-05-11
  assert.deepEqual(runs(crontab({ minute: 0, hour: 9, dayOfWeek: 'mon-fri' }), 'UTC', '2026-05-08T17:00:00Z', 2),
    ['2026-05-11T09:00:00Z', '2026-05-12T09:00:00Z']);
  assert.deepEqual(runs(crontab({ minute: 0, hour: 9, dayOfWeek: 'sat,sun' }), 'UTC', '2026-05-08T17:00:00Z', 3),
    ['2026-05-09T09:00:00Z', '2026-05-10T09:00:00Z', '2026-05-16T09:00:00Z']);
});

test('day of month AND day of week must both match (Celery), not either (Vixie cron)', () => {
  // the 1st that is a Monday: 2026-06-01, then 2027-02-01
  assert.deepEqual(runs(crontab({ minute: 0, hour: 12, dayOfMonth: 1, dayOfWeek: 'mon' }), 'UTC', '2026-01-01T00:00:00Z', 2),
    ['2026-06-01T12:00:00Z', '2027-02-01T12:00:00Z']);
  // the first Monday of each month
  assert.deepEqual(runs(crontab({ minute: 0, hour: 8, dayOfMonth: '1-7', dayOfWeek: 1 }), 'UTC', '2026-01-01T00:00:00Z', 3),
    ['2026-01-05T08:00:00Z', '2026-02-02T08:00:00Z', '2026-03-02T08:00:00Z']);
});

// ------------------------------------------------------------------------------------------ in words

test('describe(): the schedule in words', () => {
  assert.equal(every(1).describe(), 'every second');
  assert.equal(every(30).describe(), 'every 30 seconds');
  assert.equal(every(90).describe(), 'every 90 seconds');
  assert.equal(every(1.5).describe(), 'every 1.5 seconds');
  assert.equal(every({ minutes: 1 }).describe(), 'every minute');
  assert.equal(every({ minutes: 15 }).describe(), 'every 15 minutes');
  assert.equal(every({ hours: 2 }).describe(), 'every 2 hours');
  assert.equal(every({ days: 1 }).describe(), 'every day');
  assert.equal(crontab({ hour: 9, minute: 43 }).describe(), 'at 09:43 every day');
  assert.equal(crontab({ minute: '*/15', dayOfWeek: 'mon-fri' }).describe(), 'every 15 minutes on Monday-Friday');
  assert.equal(crontab().describe(), 'every minute');
  assert.equal(crontab({ minute: 0 }).describe(), 'every hour at :00');
  assert.equal(crontab({ minute: 0, hour: '*/3' }).describe(), 'every 3 hours at :00');
  assert.equal(crontab({ minute: 30, hour: '8,20' }).describe(), 'at 08:30, 20:30 every day');
  assert.equal(crontab({ hour: 8, dayOfWeek: 1 }).describe(), 'every minute during hour 8 on Monday',
    'minute defaults to *, as in Celery');
  assert.equal(crontab({ minute: '0,30', hour: '9-17' }).describe(), 'every 30 minutes during hours 9-17');
  assert.equal(crontab({ minute: '5,10' }).describe(), 'at minutes 5, 10 of every hour');
  assert.equal(crontab({ minute: 0, hour: 0, dayOfMonth: 1 }).describe(), 'at 00:00 on day 1 of the month');
  assert.equal(crontab({ minute: 0, hour: 12, dayOfMonth: '1-7', dayOfWeek: 'mon' }).describe(),
    'at 12:00 on Monday when it is days 1-7 of the month');
  assert.equal(crontab({ minute: 0, hour: 0, dayOfMonth: 1, monthOfYear: 'jan,jul' }).describe(),
    'at 00:00 on day 1 of the month in January, July');
  assert.equal(crontab({ minute: 0, hour: 10, dayOfWeek: 'sat,sun' }).describe(), 'at 10:00 on Sunday, Saturday');
});

// ------------------------------------------------------------------------------------------ errors

test('every(): clear errors for bad intervals', () => {
  badOption(() => every(0), /positive number of seconds/);
  badOption(() => every(-5), /positive number of seconds/);
  badOption(() => every(Number.NaN), /positive number of seconds/);
  badOption(() => every({}), /positive number of seconds/);
  badOption(() => every({ mins: 1 } as never), /unknown unit "mins".*did you mean "minutes"/);
  badOption(() => every({ minutes: -1 }), /minutes must be a number ≥ 0/);
  badOption(() => every('5' as never), /every\(\) takes seconds/);
  badOption(() => toSchedule(0, 'beatSchedule["x"]'), /beatSchedule\["x"\]: schedule must be a positive number/);
  badOption(() => toSchedule('every minute', 'beatSchedule["x"]'), /must be every\(...\), crontab\(...\) or a number/);
});

test('crontab(): clear errors naming the field, the value and the allowed range', () => {
  badOption(() => crontab({ minute: 60 }), /minute 60 has 60, out of range 0-59/);
  badOption(() => crontab({ hour: '25' }), /hour "25" has 25, out of range 0-23/);
  badOption(() => crontab({ dayOfWeek: 7 }), /dayOfWeek 7 .*0-6 with 0 = Sunday/);
  badOption(() => crontab({ dayOfWeek: 'mun' }), /dayOfWeek "mun" has "mun", which is not a name or number/);
  badOption(() => crontab({ minute: 'mon' }), /minute "mon" has "mon", which is not a number/);
  badOption(() => crontab({ minute: '*/0' }), /step of 0/);
  badOption(() => crontab({ minute: '5/10' }), /a step needs \* or a range/);
  badOption(() => crontab({ minute: '' }), /empty item/);
  badOption(() => crontab({ minute: '1,,2' }), /empty item/);
  badOption(() => crontab({ minute: [] }), /empty list/);
  badOption(() => crontab({ minute: 1.5 }), /not a whole number/);
  badOption(() => crontab({ minute: '1-5-7' }), /not \*, a value, a range or a step/);
  badOption(() => crontab({ day_of_week: 1 } as never), /unknown field "day_of_week" \(did you mean "dayOfWeek"\?\)/);
  badOption(() => crontab({ minutes: 5 } as never), /unknown field "minutes" \(did you mean "minute"\?\)/);
  badOption(() => crontab({ dayOfMonth: 31, monthOfYear: 2 }), /never happens/);
});
