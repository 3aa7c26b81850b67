// The web app's counterpart of a Celery project's `celery.py`: one celeriac app, its task module, the beat schedule,
// Shanghai time.
// Queues, results and beat state go to an embedded SQLite file beside the app's data, unless CELERIAC_BROKER_URL
// (e.g. redis://127.0.0.1:6379/1) and CELERIAC_RESULT_BACKEND point elsewhere. Tasks go to the `sms_login` queue,
// so a quick-start worker on the same Redis never takes them.
import { join } from 'node:path';
import { Celeriac, every } from 'celeriac';
import { settings } from '../settings.ts';

const s = settings();

export const app = new Celeriac('sms_login', {
  broker: `sqlite:///${join(s.dataDir, 'celeriac.db')}`,
  include: ['./tasks.ts'],
  taskDefaultQueue: 'sms_login',
  timezone: 'Asia/Shanghai',
  enableUtc: false,
  beatSchedule: {
    update_banner: {
      task: 'sms_login.tasks.update_banner',
      // every minute; SMS_LOGIN_BANNER_EVERY (seconds) shortens it for tests
      schedule: every(s.bannerEverySeconds === 60 ? { minutes: 1 } : { seconds: s.bannerEverySeconds }),
      // a refresh that waited longer than one period is superseded by the next one
      options: { expires: s.bannerEverySeconds },
    },
  },
});
