/** Ends what a test opened, newest first: apps are closed, workers stopped (warm), processes killed (-9). */
import { Celeriac } from 'celeriac';
import { Proc } from './processes.ts';

export type Closable = Celeriac | Proc | { stop(): Promise<void> };

export async function closeAll(open: Closable[]): Promise<void> {
  for (const o of open.splice(0).reverse()) {
    if (o instanceof Celeriac) await o.close();
    else if (o instanceof Proc) {
      if (o.child.exitCode === null && o.child.signalCode === null) o.kill('SIGKILL');
      await o.exited;
    } else await o.stop();
  }
}
