/**
 * The whole system in one process, as `npm start` runs it: the web app, a celeriac Worker consuming the `sms_login`
 * queue, and Beat sending update_banner — all on the embedded SQLite default, or on Redis by CELERIAC_BROKER_URL.
 * SMS_LOGIN_WORKER=0 / SMS_LOGIN_BEAT=0 leave those to a separate `celeriac -A examples/sms-login/celery_task
 * worker -B`, which shares the same files (or Redis) and so the same queue, cache and outbox.
 *
 * Start order: resources and demo data, worker, beat, then the HTTP server (so the first request finds a worker).
 * Stop order (warm, idempotent): stop accepting requests, stop beat (releasing its lock), let the worker finish what
 * it runs, close the app's connections, then the cache pool and the database.
 */
import { Beat, Worker, createLogger, type Logger } from 'celeriac';
import type { FastifyInstance } from 'fastify';
import { app } from './celery_task/celery.ts';
import { sendSms } from './celery_task/tasks.ts';
import { closeRuntime, runtime, seedDemoData } from './runtime.ts';
import { settings as loadedSettings, type Settings } from './settings.ts';
import { buildWebApp } from './web/app.ts';
import type { SmsTaskStatus } from './web/deps.ts';

export interface RunningSystem {
  url: string;
  settings: Settings;
  stop(): Promise<void>;
}

async function smsStatus(id: string): Promise<SmsTaskStatus> {
  const meta = await app.AsyncResult(id).meta();
  const state = meta?.status ?? 'PENDING';
  if (!meta) return { id, state };
  if (state === 'SUCCESS') return { id, state, result: meta.result };
  const exc = meta.result as { exc_type?: unknown; exc_message?: unknown } | null;
  if (exc && typeof exc.exc_type === 'string') {
    const message = Array.isArray(exc.exc_message) ? exc.exc_message.map(String).join(' ') : String(exc.exc_message ?? '');
    return { id, state, error: { type: exc.exc_type, message } };
  }
  return { id, state };
}

export async function startSystem(options: { settings?: Settings; logger?: Logger } = {}): Promise<RunningSystem> {
  const s = options.settings ?? loadedSettings();
  const log = options.logger ?? createLogger({ level: s.logLevel });
  const rt = runtime();
  if (s.seed) await seedDemoData();

  let worker: Worker | null = null;
  let beat: Beat | null = null;
  let web: FastifyInstance | null = null;
  let stopping: Promise<void> | null = null;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('sms-login: stopping (web, beat, worker)...');
      await web?.close().catch((err: Error) => log.error(`web: ${err.message}`));
      await beat?.stop().catch((err: Error) => log.error(`beat: ${err.message}`));
      await worker?.stop().catch((err: Error) => log.error(`worker: ${err.message}`));
      await app.close().catch(() => {});
      await closeRuntime();
      log.info('sms-login: stopped.');
    })();
    return stopping;
  };

  try {
    if (s.embedWorker) {
      worker = new Worker(app, { concurrency: 20, logger: log, hostname: 'sms-login@%h', shutdownTimeout: 10 });
      await worker.start();
    }
    if (s.embedBeat) {
      beat = new Beat(app, { logger: log });
      await beat.start();
    }
    web = await buildWebApp({
      rt,
      settings: s,
      queueSms: async (phone, code) => (await sendSms.applyAsync([phone, code], {}, { expires: s.codeTtlSeconds })).id,
      smsStatus,
      brokerUrl: async () => (await app.broker()).displayUrl,
      logError: (m) => log.error(m),
    });
    const address = await web.listen({ host: s.host, port: s.port });
    const url = address.replace('[::1]', 'localhost');
    return { url, settings: s, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
