/**
 * Apps on memory:// and in-process workers for one test file, ended after each test (workers first, newest first):
 * warm by default, cold where a test leaves a task running on purpose.
 */
import { afterEach } from 'node:test';
import { Worker, type Celeriac, type WorkerOptions } from 'celeriac';
import { memoryApp } from 'celeriac/testing';
import { quietLogger } from './logs.ts';

export function memoryWorkers(prefix: string, { stopCold = false } = {}) {
  const open: Array<Worker | Celeriac> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) {
      if (o instanceof Worker) await o.stop({ cold: stopCold });
      else await o.close();
    }
  });
  return {
    makeApp(config: Parameters<typeof memoryApp>[1] = {}): Celeriac {
      const app = memoryApp(prefix, config);
      open.push(app);
      return app;
    },
    async startWorker(app: Celeriac, o: WorkerOptions = {}): Promise<Worker> {
      const w = new Worker(app, { logger: quietLogger(), ...o });
      await w.start();
      open.push(w);
      return w;
    },
  };
}
