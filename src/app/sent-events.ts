/**
 * `task-sent` events (Celery's task_send_sent_event, config `taskSendSentEvent`): a producer publishes one single
 * event for every task message it sends, with the fields of celery/app/amqp.py's send_task_message, through the
 * broker's ControlChannel (docs/wire-format.md §10). Never in the way of the send: the event goes out after the
 * message was stored, and a failure to publish it is ignored (a monitor misses it).
 */
import { hostname } from 'node:os';
import { encodeEvent } from '../protocol/index.ts';
import type { Broker, OutgoingMessage } from '../broker/broker.ts';

/** Celery's anon_nodename(): what a producer signs its events with. */
const PRODUCER = `gen${process.pid}@${hostname()}`;
let clock = 0;

function sentFields(m: OutgoingMessage): Record<string, unknown> | null {
  try {
    const env = JSON.parse(m.raw);
    const h = env.headers ?? {};
    const info = env.properties?.delivery_info ?? {};
    return {
      uuid: h.id, root_id: h.root_id ?? null, parent_id: h.parent_id ?? null, name: h.task,
      args: h.argsrepr ?? null, kwargs: h.kwargsrepr ?? null, retries: h.retries ?? 0,
      eta: h.eta ?? null, expires: h.expires ?? null,
      queue: m.queue, exchange: info.exchange ?? '', routing_key: info.routing_key ?? m.queue,
    };
  } catch {
    return null;
  }
}

/** Publish a task-sent event for each message (already stored by the broker); resolves at once. */
export function sendSentEvents(broker: Broker, messages: OutgoingMessage[]): void {
  const control = broker.control;
  if (!control) return;
  for (const m of messages) {
    const fields = sentFields(m);
    if (!fields) continue;
    const { routingKey, raw } = encodeEvent('task-sent', PRODUCER, fields, ++clock);
    control.event(routingKey, raw).catch(() => {});
  }
}
