/**
 * Every error a user can meet carries a stable `code` (see docs/errors.md) and a message that says what to do.
 * Errors are plain classes with no dependencies so that every layer can throw them.
 */

export const ErrorCode = {
  BadUrl: 'E_BAD_URL',
  UnknownScheme: 'E_UNKNOWN_SCHEME',
  NotJson: 'E_NOT_JSON',
  Timeout: 'E_TIMEOUT',
  NotRegistered: 'E_NOT_REGISTERED',
  MalformedMessage: 'E_MALFORMED_MESSAGE',
  TaskFailed: 'E_TASK_FAILED',
  TaskRevoked: 'E_TASK_REVOKED',
  Retry: 'E_RETRY',
  MaxRetriesExceeded: 'E_MAX_RETRIES_EXCEEDED',
  ModuleLoad: 'E_MODULE_LOAD',
  NoApp: 'E_NO_APP',
  BadOption: 'E_BAD_OPTION',
  AmbiguousOptions: 'E_AMBIGUOUS_OPTIONS',
  Connection: 'E_CONNECTION',
  BrokerFull: 'E_BROKER_FULL',
  Closed: 'E_CLOSED',
  DuplicateTask: 'E_DUPLICATE_TASK',
  TooLarge: 'E_TOO_LARGE',
  SqliteDriver: 'E_SQLITE_DRIVER',
  TypeScriptLoader: 'E_TS_LOADER',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CeleriacError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CeleriacError';
    this.code = code;
  }
}

/** A wire message that cannot be run. `taskId` is set when the message still names one, so a FAILURE can be stored. */
export class MalformedMessageError extends CeleriacError {
  readonly reason: string;
  readonly taskId: string | null;
  constructor(reason: string, taskId: string | null = null) {
    super(ErrorCode.MalformedMessage, `malformed message: ${reason}`);
    this.name = 'MalformedMessageError';
    this.reason = reason;
    this.taskId = taskId;
  }
}

/** A value that cannot travel as JSON (a function, a BigInt, a Map, a cycle…), found at call time. */
export class NotJsonError extends CeleriacError {
  constructor(what: string, path: string, found: string) {
    super(ErrorCode.NotJson, `${what} must be JSON: ${path} is ${found}`);
    this.name = 'NotJsonError';
  }
}

export class TimeoutError extends CeleriacError {
  constructor(message: string) {
    super(ErrorCode.Timeout, message);
    this.name = 'TimeoutError';
  }
}

/** The task name is not registered in the worker that received it (Celery's `NotRegistered`). */
export class NotRegisteredError extends CeleriacError {
  readonly taskName: string;
  constructor(taskName: string) {
    super(ErrorCode.NotRegistered, taskName);
    this.name = 'NotRegistered';
    this.taskName = taskName;
  }
}

/**
 * A task failed remotely. Rebuilt from a stored exception object, whichever language raised it:
 * `excType`/`excModule` name the remote class (`ValueError`/`builtins`), `excMessage` holds its arguments.
 */
export class TaskError extends CeleriacError {
  readonly taskId: string;
  readonly excType: string;
  readonly excModule: string | null;
  readonly excMessage: unknown[];
  readonly remoteTraceback: string | null;
  constructor(taskId: string, excType: string, excModule: string | null, excMessage: unknown[], traceback: string | null) {
    const text = excMessage.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ');
    super(ErrorCode.TaskFailed, `${excType}: ${text}`);
    this.name = excType;
    this.taskId = taskId;
    this.excType = excType;
    this.excModule = excModule;
    this.excMessage = excMessage;
    this.remoteTraceback = traceback;
  }
}

/** The task was revoked, expired or terminated before it produced a value (Celery's `TaskRevokedError`). */
export class TaskRevokedError extends CeleriacError {
  readonly taskId: string;
  readonly why: string;
  constructor(taskId: string, why: string) {
    super(ErrorCode.TaskRevoked, `task ${taskId} ${why}`);
    this.name = 'TaskRevokedError';
    this.taskId = taskId;
    this.why = why;
  }
}

export class MaxRetriesExceededError extends CeleriacError {
  constructor(taskName: string, taskId: string, maxRetries: number) {
    super(ErrorCode.MaxRetriesExceeded, `Can't retry ${taskName}[${taskId}]: max retries (${maxRetries}) exceeded`);
    this.name = 'MaxRetriesExceededError';
  }
}

/**
 * Returned by `this.retry()` inside a task, to be thrown: `throw this.retry({ countdown })`. When the handler ends with
 * it, the worker re-publishes the message (same id, one more retry, an ETA) and stores RETRY.
 */
export class RetrySignal extends CeleriacError {
  readonly countdown: number;
  readonly exc: unknown;
  constructor(countdown: number, exc: unknown) {
    super(ErrorCode.Retry, `Retry in ${countdown}s${exc instanceof Error ? `: ${exc.message}` : ''}`);
    this.name = 'Retry';
    this.countdown = countdown;
    this.exc = exc;
  }
}
