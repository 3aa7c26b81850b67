/** The worker's start-up banner, laid out like Celery's so that a Celery user finds each line where they expect it. */
import { arch, release, type } from 'node:os';
import type { Worker } from '../worker/worker.ts';
import { isBuiltin } from '../app/builtins.ts';

export function workerBanner(worker: Worker, version: string, brokerUrl: string, backendUrl: string): string {
  const app = worker.app;
  const tasks = [...app.tasks.keys()].filter((t) => !isBuiltin(t)).sort();
  const lines = [
    ` -------------- ${worker.hostname} v${version} (celeriac)`,
    `--- ***** ----- `,
    `-- ******* ---- ${type()}-${release()}-${arch()} ${new Date().toISOString().replace('T', ' ').slice(0, 19)}`,
    `- *** --- * --- `,
    `- ** ---------- [config]`,
    `- ** ---------- .> app:         ${app.main}`,
    `- ** ---------- .> transport:   ${brokerUrl}`,
    `- ** ---------- .> results:     ${backendUrl}`,
    `- *** --- * --- .> concurrency: ${worker.concurrency} (async)`,
    `-- ******* ---- .> prefetch:    ${worker.prefetch}`,
    `--- ***** ----- .> task events: ${worker.sendTaskEvents ? 'ON' : 'OFF (enable -E to monitor tasks in this worker)'}`,
    ` -------------- [queues]`,
    ...worker.queues.map((q) => `                .> ${q.padEnd(16)} exchange=${q}(direct) key=${q}`),
    '',
    '[tasks]',
    ...tasks.map((t) => `  . ${t}`),
    '',
  ];
  return lines.join('\n');
}
