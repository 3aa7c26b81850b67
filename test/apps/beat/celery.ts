// A beat test app: its schedule comes from $BEAT_SCHEDULE (JSON), so each test picks its entries and can change them
// between restarts. An entry is { every: seconds } (every(...)), { seconds: n } (a plain number of seconds, like
// Celery's timedelta) or { crontab: {...} }, plus the BeatEntry fields. $BEAT_TIMEZONE and $BEAT_ENABLE_UTC set the
// zone.
import { Celeriac, crontab, every, type BeatEntry, type CrontabSpec } from 'celeriac';

interface EnvEntry extends Omit<BeatEntry, 'task' | 'schedule'> {
  task?: string;
  every?: number;
  seconds?: number;
  crontab?: CrontabSpec;
}

const spec = JSON.parse(process.env.BEAT_SCHEDULE ?? '{}') as Record<string, EnvEntry>;
const beatSchedule: Record<string, BeatEntry> = {};
for (const [name, { task, every: secs, seconds, crontab: cron, ...rest }] of Object.entries(spec)) {
  const schedule = cron ? crontab(cron) : secs !== undefined ? every(secs) : (seconds as number);
  beatSchedule[name] = { task: task ?? 'beat.tick', schedule, ...rest };
}

export const app = new Celeriac('beattest', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
  include: ['./tasks.ts'],
  timezone: process.env.BEAT_TIMEZONE || undefined,
  enableUtc: process.env.BEAT_ENABLE_UTC !== 'false',
  beatSchedule,
});
