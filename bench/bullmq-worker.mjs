// BullMQ's side of the benchmark: one worker process, concurrency 100, return values stored (BullMQ's default).
// Plain JavaScript, as the celeriac worker runs, so neither pays for a TypeScript loader.
import { Worker } from 'bullmq';

const [host, port] = [process.env.BENCH_REDIS_HOST ?? '127.0.0.1', Number(process.env.BENCH_REDIS_PORT)];
const worker = new Worker('bench', async (job) => job.data.n, {
  connection: { host, port, db: Number(process.env.BENCH_REDIS_DB ?? 0) },
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 100),
});
worker.on('ready', () => console.log('bullmq worker ready'));
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
