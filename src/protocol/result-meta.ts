/**
 * Task state records stored at `celery-task-meta-<id>` in the result backend (docs/wire-format.md §7.1, §7.4).
 *
 * Invariants:
 * - makeResultMeta writes what a Python worker writes, keys in Python's order:
 *   status, result, traceback, children, date_done, [group_id], [parent_id], [extended fields], task_id.
 *   `task_id` is always there (a Python client raises KeyError without it, s13 r1).
 * - date_done is naive UTC with microseconds, set only for ready states.
 * - decodeResultMeta is tolerant of records other writers produce (s13): missing children/date_done/traceback/task_id
 *   get defaults and a string exc_message becomes a one-element list. Custom states (`PROGRESS`, from update_state)
 *   are kept; only a missing or non-string status is refused.
 */
import { MalformedMessageError } from '../common/errors.ts';
import { parseJson, stringifyJson } from '../common/exact-json.ts';
import { formatNaiveUtc } from './dates.ts';
import { isPlainObject } from './envelope.ts';

export type KnownTaskState = 'PENDING' | 'RECEIVED' | 'STARTED' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED';
/** Celery's states, or a custom one a task set with updateState (e.g. PROGRESS). */
export type TaskState = KnownTaskState | (string & {});

export const ALL_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED',
]);
export const READY_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['RETRY', 'FAILURE', 'REVOKED']);

export interface ExceptionInfo {
  exc_type: string;
  exc_message: unknown[];
  exc_module?: string;
}

export interface ResultMeta {
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  task_id: string;
  group_id?: string;
  parent_id?: string;
  [extra: string]: unknown;
}

export const RESULT_KEY_PREFIX = 'celery-task-meta-';

export function resultKey(taskId: string): string {
  return RESULT_KEY_PREFIX + taskId;
}

const CORE_KEYS = new Set(['status', 'result', 'traceback', 'children', 'date_done', 'task_id', 'group_id', 'parent_id']);

export function makeResultMeta(a: {
  taskId: string; status: TaskState; result: unknown; traceback?: string | null;
  children?: unknown[]; groupId?: string | null; parentId?: string | null; now?: Date; extra?: Record<string, unknown>;
}): ResultMeta {
  const meta: Record<string, unknown> = {
    status: a.status,
    result: a.result === undefined ? null : a.result,
    traceback: a.traceback ?? null,
    children: a.children ?? [],
    date_done: READY_STATES.has(a.status) ? formatNaiveUtc(a.now ?? new Date()) : null,
  };
  // Python tests these for truthiness, so an empty id is the same as none.
  if (a.groupId) meta.group_id = a.groupId;
  if (a.parentId) meta.parent_id = a.parentId;
  for (const [k, v] of Object.entries(a.extra ?? {})) {
    if (!CORE_KEYS.has(k) && v !== undefined) meta[k] = v;
  }
  meta.task_id = a.taskId;
  return meta as ResultMeta;
}

export function encodeResultMeta(meta: ResultMeta): string {
  return stringifyJson(meta)!;
}

/** An exception object as Python would rebuild it: exc_message always a list (s13 r5 stores a bare string). */
export function normalizeExceptionInfo(v: unknown): unknown {
  if (!isPlainObject(v) || typeof v.exc_type !== 'string') return v;
  const msg = v.exc_message;
  const list = Array.isArray(msg) ? msg : msg === undefined || msg === null ? [] : [msg];
  return { ...v, exc_message: list };
}

export function decodeResultMeta(raw: string, taskId: string): ResultMeta {
  let parsed: unknown;
  try {
    parsed = parseJson(raw);
  } catch (err) {
    throw new MalformedMessageError(`result record is not JSON (${(err as Error).message})`, taskId);
  }
  if (!isPlainObject(parsed)) throw new MalformedMessageError('result record is not a JSON object', taskId);
  const status = parsed.status;
  if (typeof status !== 'string' || status === '') {
    throw new MalformedMessageError(`result record has no status (found ${JSON.stringify(status)})`, taskId);
  }
  const result = parsed.result === undefined ? null : parsed.result;
  const meta: Record<string, unknown> = {
    status,
    result: EXCEPTION_STATES.has(status) ? normalizeExceptionInfo(result) : result,
    traceback: typeof parsed.traceback === 'string' ? parsed.traceback : null,
    children: Array.isArray(parsed.children) ? parsed.children : [],
    date_done: typeof parsed.date_done === 'string' ? parsed.date_done : null,
  };
  if (typeof parsed.group_id === 'string' && parsed.group_id !== '') meta.group_id = parsed.group_id;
  if (typeof parsed.parent_id === 'string' && parsed.parent_id !== '') meta.parent_id = parsed.parent_id;
  for (const [k, v] of Object.entries(parsed)) {
    if (!CORE_KEYS.has(k)) meta[k] = v;
  }
  meta.task_id = typeof parsed.task_id === 'string' && parsed.task_id !== '' ? parsed.task_id : taskId;
  return meta as ResultMeta;
}
