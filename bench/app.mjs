// The benchmark's celeriac app: one no-op task, acks late and results stored (the default, safe configuration).
// Plain JavaScript on the compiled package, so the worker runs as a deployed one does: no TypeScript at run time.
import { Celeriac } from 'celeriac';

export const app = new Celeriac('bench', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
});

export const noop = app.task('bench.noop', (n) => n);
