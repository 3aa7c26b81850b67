/**
 * Read-only view of an app's beat schedule for `beat --list` and dashboards: each entry, its schedule in words,
 * its last run (from the BeatStore, shared by every beat process) and its next run, with times in the app's zone.
 */
import type { Celeriac } from '../app/app.ts';
import { resolveEntries } from './entry.ts';

export interface EntryStatus {
  name: string;
  task: string;
  schedule: string;
  /** ms since the epoch, or null when the entry never ran. */
  lastRun: number | null;
  /**
   * When a beat sends it next (ms since the epoch). For an entry that never ran: as if a beat started now.
   * A time not after `now` means a beat sends it at once (once, however many runs were missed, unless catchUp).
   */
  nextRun: number;
}

export interface ScheduleStatus {
  timezone: string;
  entries: EntryStatus[];
  /** Entries that have state in the store but are no longer scheduled (the next leader forgets them). */
  removed: string[];
}

export async function scheduleStatus(app: Celeriac, now = Date.now()): Promise<ScheduleStatus> {
  const tz = app.conf.timezone;
  const entries = resolveEntries(app.conf.beatSchedule);
  const lastRuns = await (await app.broker()).beatStore(app.main).lastRuns();
  const names = new Set(entries.map((e) => e.name));
  return {
    timezone: tz,
    entries: entries.map((e) => {
      const lastRun = lastRuns.get(e.name) ?? null;
      return { name: e.name, task: e.task, schedule: e.schedule.describe(), lastRun, nextRun: e.schedule.next(lastRun, now, tz) };
    }),
    removed: [...lastRuns.keys()].filter((n) => !names.has(n)).sort(),
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** `2026-03-08 09:43:00 +08:00`: wall-clock time in `tz` and its UTC offset at that instant. */
export function formatInZone(ms: number, tz: string): string {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
      minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset',
    });
    formatters.set(tz, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(ms))) p[part.type] = part.value;
  const offset = p.timeZoneName === 'GMT' ? '+00:00' : p.timeZoneName.replace('GMT', '');
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${offset}`;
}
