/** Ids and node names in Celery's shapes: UUID4 task ids, `gen<pid>@<host>` producers, `celery@<host>` workers. */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

export const uuid = (): string => randomUUID();

export function hostName(): string {
  return hostname() || 'localhost';
}

/** Celery's `%h`, `%n`, `%d` expansions in a node name (`-n w1@%h`). */
export function expandNodeName(name: string): string {
  const host = hostName();
  const [short, ...domain] = host.split('.');
  return name.replace(/%h/g, host).replace(/%n/g, short).replace(/%d/g, domain.join('.'));
}

export function producerOrigin(): string {
  return `gen${process.pid}@${hostName()}`;
}
