// The quick start's app, the counterpart of a Celery project's `celery.py`: one app, its task modules, and where
// messages and results live.
// With no URL configured it uses the embedded default (sqlite://.celeriac/celeriac.db): nothing to install.
// Point it at Redis with CELERIAC_BROKER_URL=redis://127.0.0.1:6379/1 CELERIAC_RESULT_BACKEND=redis://127.0.0.1:6379/2.
import { Celeriac } from 'celeriac';

export const app = new Celeriac('test', {
  include: ['./order_task.ts', './user_task.ts'],
  timezone: 'Asia/Shanghai',
  enableUtc: false,
});
