import { app } from './celery.ts';

/** What beat sends in the tests; returns its arguments so a test can read them back from the result. */
export const tick = app.task('beat.tick', (...args: unknown[]) => ({ ticked: args }));
