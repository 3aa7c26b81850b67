// The beat example of docs/beat.md: a Celery `beat_schedule` in TypeScript — update_banner every minute and
// send_sms every day at 09:43, in Asia/Shanghai time with enableUtc false.
import { Celeriac, crontab, every } from 'celeriac';

export const app = new Celeriac('celery_task', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
  timezone: 'Asia/Shanghai',
  enableUtc: false,
  beatSchedule: {
    update_banner: {
      task: 'celery_task.home_task.update_banner',
      schedule: every({ minutes: 1 }),
    },
    send_sms: {
      task: 'celery_task.user_task.send_sms',
      schedule: crontab({ hour: 9, minute: 43 }),
      args: ['18888888', '6666'],
    },
  },
});
