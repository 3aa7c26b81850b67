/**
 * `celeriac worker`: load the app and its task modules, print the banner, run a Worker (and beat with -B) until a
 * signal ends it.
 *
 * Signals: the first SIGINT or SIGTERM starts a warm shutdown (no new tasks; running ones finish, for at most
 * --shutdown-timeout seconds, then the rest are given back as in a cold one); a second one, or SIGQUIT, is cold at
 * once. The process exits 0 once the worker has stopped. The default timeout, 25 s, ends a warm shutdown inside
 * Kubernetes' 30 s termination grace period, leaving time to give messages back before SIGKILL. Started by npx or
 * `npm run`, the worker also stops warmly when that npm process goes away (parent-watch.ts).
 */
import { Command } from 'commander';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { createLogger } from '../common/logger.ts';
import { VERSION } from '../common/version.ts';
import { Worker } from '../worker/worker.ts';
import { loadIncludes } from './load-app.ts';
import { workerBanner } from './banner.ts';
import { UsageError } from './output.ts';
import { onParentGone } from './parent-watch.ts';
import { startBeat } from './beat-command.ts';
import { appFrom, list, number, type GlobalOptions } from './common-options.ts';

export const DEFAULT_SHUTDOWN_TIMEOUT_S = 25;
/** After the worker stopped: how long closing the app's connections may take before the process exits anyway. */
const CLOSE_LIMIT_MS = 500;

interface WorkerCommandOptions {
  concurrency?: number;
  queues?: string[];
  hostname?: string;
  beat?: boolean;
  taskEvents?: boolean;
  shutdownTimeout: number;
}

async function runWorker(g: GlobalOptions, o: WorkerCommandOptions): Promise<void> {
  if (!g.app) throw new UsageError('worker needs an app: celeriac -A <module> worker');
  const loaded = await appFrom(g);
  await loadIncludes(loaded);
  const { app } = loaded;
  const logger = createLogger({ level: g.loglevel });
  const worker = new Worker(app, {
    concurrency: o.concurrency, queues: o.queues, hostname: o.hostname, logger, shutdownTimeout: o.shutdownTimeout,
    sendTaskEvents: o.taskEvents,
  });
  const [broker, backend] = await Promise.all([app.broker(), app.backend()]);
  process.stdout.write(workerBanner(worker, VERSION, broker.displayUrl, backend.displayUrl) + '\n');
  let signals = 0;
  let beat: Awaited<ReturnType<typeof startBeat>> | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    void beat?.stop();
    if (signals === 1 && sig !== 'SIGQUIT') {
      logger.warning(`worker: Warm shutdown (MainProcess), waiting up to ${o.shutdownTimeout}s for running tasks`);
      void worker.stop();
    } else {
      logger.warning('worker: Cold shutdown (MainProcess)');
      void worker.stop({ cold: true });
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.on(s, onSignal);
  onParentGone(() => {
    logger.warning('worker: the npm process that started this worker is gone: treating it as SIGTERM');
    onSignal('SIGTERM');
  });
  worker.once('stopped', () => {
    // a broker that does not answer (gone, stalled) must not hold the exit: its connections end with the process
    const closing = Promise.resolve(beat?.stop()).finally(() => app.close());
    const limit = new Promise((resolve) => setTimeout(resolve, CLOSE_LIMIT_MS).unref());
    void Promise.race([closing, limit]).finally(() => process.exit(0));
  });
  try {
    if (o.beat) beat = await startBeat(app, logger); // first, so a bad beatSchedule fails before any message is reserved
    await worker.start();
  } catch (err) {
    if (err instanceof CeleriacError) throw err;
    throw new CeleriacError(ErrorCode.Connection, `worker cannot start: ${(err as Error).message}`, { cause: err });
  }
}

export function registerWorkerCommand(program: Command, globals: () => GlobalOptions): void {
  program.command('worker')
    .description('start a worker: it runs the tasks sent to its queues (Celery\'s `celery -A pkg worker -l info`)')
    .option('-c, --concurrency <n>', 'tasks in flight at once', number('concurrency', { integer: true, min: 1 }))
    .option('-Q, --queues <list>', 'comma-separated queues to consume', list)
    .option('-n, --hostname <name>', 'node name, e.g. w1@%h')
    .option('-B, --beat', 'also run beat (the scheduler) in this process')
    .option('-E, --task-events', 'send task events (task-received, -started, -succeeded, …) for monitors such as Flower')
    .option('--shutdown-timeout <seconds>',
      'on SIGTERM/SIGINT, how long running tasks may finish before they are given back', number('--shutdown-timeout'),
      DEFAULT_SHUTDOWN_TIMEOUT_S)
    .action((o: WorkerCommandOptions) => runWorker(globals(), o));
}
