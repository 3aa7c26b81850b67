/**
 * Mingle, as Celery's workers do at start (celery/worker/consumer/mingle.py): ask the running workers for the
 * revoked ids they hold (`hello`), so a task revoked while only Python workers ran is refused here too. Python
 * workers keep revokes in memory only; celeriac workers also have them in the broker, and answer hello as well.
 * Only where Python workers can be (Redis). The wait ends when every worker the broadcast reached has answered (at
 * once when none listens), at most a second.
 */
import type { Celeriac } from '../app/app.ts';
import { EVERY_LISTENER, type ControlChannel } from '../broker/broker.ts';
import type { Logger } from '../common/logger.ts';
import { liveHelloIds } from './pidbox.ts';

const HELLO_TIMEOUT_MS = 1000;

/** Ask, and hand every live revoked id of the replies to `take`. */
export async function mingle(app: Celeriac, control: ControlChannel, hostname: string, log: Logger,
  take: (ids: string[]) => Promise<void>): Promise<void> {
  if (!control.pythonPeers) return;
  log.info('mingle: searching for neighbors');
  let replies: Record<string, unknown>;
  try {
    // the wait ends once every process the broadcast reached has answered: at once when nobody listens
    replies = await app.broadcast('hello', { from_node: hostname, revoked: {} }, { timeout: HELLO_TIMEOUT_MS, limit: EVERY_LISTENER });
  } catch (err) {
    log.warning(`mingle: cannot ask the other workers: ${(err as Error).message}`);
    return;
  }
  const nodes = Object.entries(replies).filter(([node, reply]) => node !== hostname && reply);
  if (nodes.length === 0) {
    log.info('mingle: all alone');
    return;
  }
  log.info(`mingle: sync with ${nodes.length} nodes`);
  const ids = new Set(nodes.flatMap(([, reply]) => liveHelloIds((reply as { revoked?: unknown }).revoked)));
  if (ids.size > 0) await take([...ids]);
  log.info('mingle: sync complete');
}
