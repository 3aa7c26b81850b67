// The chaos run's app: one task that records each execution (id, due time, run time, worker incarnation) in
// $CHAOS_RUN_LOG. CHAOS_WORKER names the incarnation (`<slot>.<generation>`), so the harness knows which runs were
// on a worker it later killed.
import { appendFileSync } from 'node:fs';
import { Celeriac, type TaskContext } from 'celeriac';

export const app = new Celeriac('chaos', {
  broker: process.env.CELERIAC_BROKER_URL,
  backend: process.env.CELERIAC_RESULT_BACKEND,
  brokerTransportOptions: { leaseTimeout: Number(process.env.CHAOS_LEASE ?? 3) },
});

const worker = process.env.CHAOS_WORKER ?? '?';

app.task('chaos.record', async function (this: TaskContext, dueAt: number, workMs: number) {
  appendFileSync(process.env.CHAOS_RUN_LOG!, `${this.request.id} ${dueAt} ${Date.now()} ${worker}\n`);
  if (workMs > 0) await new Promise((r) => setTimeout(r, workMs));
  return dueAt;
});
