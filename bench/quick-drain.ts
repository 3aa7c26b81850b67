// Rough drain rate: N no-op tasks pre-enqueued, one worker (this process), results stored, acks late.
import { Celeriac, Worker, createLogger } from 'celeriac';

const url = process.argv[2] ?? 'redis://127.0.0.1:6399/0';
const n = Number(process.argv[3] ?? 20000);
const app = new Celeriac('bench', { broker: url, backend: url.replace(/\/\d+$/, '/1') });
const noop = app.task('bench.noop', () => null);
const broker = await app.broker();
let t0 = performance.now();
if (process.env.DRAIN_ONLY !== '1') {
await broker.purge(['celery']);
const batch = 1000;
for (let i = 0; i < n; i += batch) {
  const msgs = [];
  for (let j = 0; j < batch && i + j < n; j++) msgs.push(app.prepareMessage('bench.noop', [], {}, {}));
  await broker.publish(msgs);
}
console.log(`enqueue (bulk): ${Math.round(n / ((performance.now() - t0) / 1000))}/s`);
}
if (process.env.FILL_ONLY === '1') {
  await app.close();
  process.exit(0);
}
let done = 0;
let resolveDone!: () => void;
const finished = new Promise<void>((r) => (resolveDone = r));
const worker = new Worker(app, { concurrency: 100, logger: createLogger({ level: 'warning' }) });
worker.on('task-done', () => {
  if (++done === n) resolveDone();
});
t0 = performance.now();
await worker.start();
await finished;
await worker.idle();
const secs = (performance.now() - t0) / 1000;
console.log(`drain: ${n} tasks in ${secs.toFixed(2)}s = ${Math.round(n / secs)} tasks/s; rss ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
await worker.stop();
await app.close();
