/**
 * A beatSchedule entry as the user writes it (Celery's `beat_schedule` item in camelCase), and its checked form.
 * Checking happens once, when a Beat (or `beat --list`) reads the schedule, with one clear error per mistake.
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { closest } from '../common/closest.ts';
import type { BeatEntry, BeatEntryOptions } from '../app/beat-schedule.ts';
import { toSchedule, type Schedule } from './schedules.ts';

export type { BeatEntry, BeatEntryOptions };

export interface ResolvedEntry {
  name: string;
  task: string;
  schedule: Schedule;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: BeatEntryOptions;
  catchUp: boolean;
}

const ENTRY_KEYS = ['task', 'schedule', 'args', 'kwargs', 'options', 'catchUp'];
const OPTION_KEYS = ['queue', 'priority', 'expires'];

function bad(message: string): CeleriacError {
  return new CeleriacError(ErrorCode.BadOption, message);
}

function unknownKey(where: string, key: string, known: string[]): CeleriacError {
  const hint = closest(key, known);
  return bad(`${where}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; known keys: ${known.join(', ')}`);
}

export function resolveEntries(schedule: Record<string, BeatEntry> | undefined): ResolvedEntry[] {
  if (schedule === undefined || schedule === null) return [];
  if (typeof schedule !== 'object' || Array.isArray(schedule)) throw bad('beatSchedule must be an object: entry name -> entry');
  return Object.entries(schedule).map(([name, e]) => {
    const where = `beatSchedule["${name}"]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw bad(`${where} must be { task, schedule, ... }`);
    for (const key of Object.keys(e)) if (!ENTRY_KEYS.includes(key)) throw unknownKey(where, key, ENTRY_KEYS);
    if (typeof e.task !== 'string' || e.task === '') throw bad(`${where}: task must be the task's name (a non-empty string)`);
    if (e.schedule === undefined) throw bad(`${where}: schedule is missing (every(...), crontab(...) or seconds)`);
    const args = e.args ?? [];
    if (!Array.isArray(args)) throw bad(`${where}: args must be an array`);
    const kwargs = e.kwargs ?? {};
    if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw bad(`${where}: kwargs must be an object`);
    const options = e.options ?? {};
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw bad(`${where}: options must be an object`);
    for (const key of Object.keys(options)) if (!OPTION_KEYS.includes(key)) throw unknownKey(`${where}.options`, key, OPTION_KEYS);
    if (e.catchUp !== undefined && typeof e.catchUp !== 'boolean') throw bad(`${where}: catchUp must be true or false`);
    return {
      name, task: e.task, schedule: toSchedule(e.schedule, where), args, kwargs, options, catchUp: e.catchUp ?? false,
    };
  });
}
