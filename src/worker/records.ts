/**
 * Task records (what Celery stores at `celery-task-meta-<id>`), built in one place from the message and the outcome,
 * and stored in one of two named ways:
 * - `batched()`: handed to the Settler, which writes it before the ack of the same batch (every final outcome);
 * - `now()`: written and awaited at once, where order matters: STARTED before the handler runs, `updateState`,
 *   and a chord part, which must be stored before it is counted.
 */
import { makeResultMeta, type TaskState } from '../protocol/index.ts';
import type { ResultBackend, StoreRequest } from '../backend/backend.ts';
import type { Settler } from './settler.ts';

/** What a record takes from its message: the ids that link it to its group and parent. */
export interface RecordSource {
  id: string;
  group?: string | null;
  parentId?: string | null;
}

export interface RecordExtra {
  traceback?: string | null;
  children?: unknown[];
  /** Instead of the message's parent (a retry names the retried task). */
  parentId?: string | null;
}

export function taskRecord(msg: RecordSource, status: TaskState, result: unknown, extra: RecordExtra = {}): StoreRequest {
  return {
    taskId: msg.id,
    meta: makeResultMeta({
      taskId: msg.id, status, result, traceback: extra.traceback ?? null, children: extra.children,
      groupId: msg.group ?? null, parentId: extra.parentId !== undefined ? extra.parentId : msg.parentId ?? null,
    }),
  };
}

export class Records {
  constructor(private readonly settler: Settler, private readonly backend: ResultBackend) {}

  /** Written with the next batch, before that batch's acks. */
  batched(record: StoreRequest): void {
    this.settler.store(record);
  }

  /** Written now; resolves once stored. */
  now(record: StoreRequest): Promise<void> {
    return this.backend.store([record]);
  }
}
