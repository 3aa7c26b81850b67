// The chaos run's app: one task that records each execution (id, due time, run time) in $CHAOS_RUN_LOG.
import { appendFileSync } from 'node:fs';
import { Celeriac, type TaskContext } from 'celeriac';

export const app = new Celeriac('chaos', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
  brokerTransportOptions: { leaseTimeout: Number(process.env.CHAOS_LEASE ?? 3) },
});

app.task('chaos.record', async function (this: TaskContext, dueAt: number, workMs: number) {
  appendFileSync(process.env.CHAOS_RUN_LOG!, `${this.request.id} ${dueAt} ${Date.now()}\n`);
  if (workMs > 0) await new Promise((r) => setTimeout(r, workMs));
  return dueAt;
});
