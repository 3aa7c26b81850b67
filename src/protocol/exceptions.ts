/**
 * Exceptions across languages: JS errors become Celery exception objects {exc_type, exc_message, exc_module}
 * (docs/wire-format.md §7.2), and stored exception objects become TaskError / TaskRevokedError.
 *
 * Invariants:
 * - errorToException never writes a module/type pair a Python client could resolve to something that is not an
 *   exception class (that gives SecurityError, s13 r7). A pair is written only when it is known to name an exception
 *   (`builtins` + a builtin exception name, `celery.exceptions` + one of its exceptions) or looks like one
 *   (`...Error`/`...Exception`/`...Warning`); otherwise the module becomes `celeriac`, which Python does not import,
 *   so it makes up an exception class of that name (§7.2).
 * - exceptionToError accepts any shape a writer may have stored and never throws.
 */
import { TaskError, TaskRevokedError } from '../common/errors.ts';
import type { ExceptionInfo } from './result-meta.ts';

/** Python 3.11 `builtins` exception classes. */
export const PYTHON_BUILTIN_EXCEPTIONS: ReadonlySet<string> = new Set([
  'ArithmeticError', 'AssertionError', 'AttributeError', 'BaseException', 'BaseExceptionGroup', 'BlockingIOError',
  'BrokenPipeError', 'BufferError', 'BytesWarning', 'ChildProcessError', 'ConnectionAbortedError', 'ConnectionError',
  'ConnectionRefusedError', 'ConnectionResetError', 'DeprecationWarning', 'EOFError', 'EncodingWarning',
  'EnvironmentError', 'Exception', 'ExceptionGroup', 'FileExistsError', 'FileNotFoundError', 'FloatingPointError',
  'FutureWarning', 'GeneratorExit', 'IOError', 'ImportError', 'ImportWarning', 'IndentationError', 'IndexError',
  'InterruptedError', 'IsADirectoryError', 'KeyError', 'KeyboardInterrupt', 'LookupError', 'MemoryError',
  'ModuleNotFoundError', 'NameError', 'NotADirectoryError', 'NotImplementedError', 'OSError', 'OverflowError',
  'PendingDeprecationWarning', 'PermissionError', 'ProcessLookupError', 'RecursionError', 'ReferenceError',
  'ResourceWarning', 'RuntimeError', 'RuntimeWarning', 'StopAsyncIteration', 'StopIteration', 'SyntaxError',
  'SyntaxWarning', 'SystemError', 'SystemExit', 'TabError', 'TimeoutError', 'TypeError', 'UnboundLocalError',
  'UnicodeDecodeError', 'UnicodeEncodeError', 'UnicodeError', 'UnicodeTranslateError', 'UnicodeWarning',
  'UserWarning', 'ValueError', 'Warning', 'ZeroDivisionError',
]);

/** Exception classes defined in (or re-exported by) Celery 5.2's `celery.exceptions`. */
export const CELERY_EXCEPTIONS: ReadonlySet<string> = new Set([
  'CeleryError', 'TaskPredicate', 'Retry', 'Ignore', 'Reject', 'ImproperlyConfigured', 'SecurityError', 'TaskError',
  'QueueNotFound', 'IncompleteStream', 'NotRegistered', 'AlreadyRegistered', 'TimeoutError',
  'MaxRetriesExceededError', 'TaskRevokedError', 'InvalidTaskError', 'ChordError', 'BackendError',
  'BackendGetMetaError', 'BackendStoreError', 'SoftTimeLimitExceeded', 'TimeLimitExceeded', 'WorkerLostError',
  'Terminated', 'WorkerShutdown', 'WorkerTerminate', 'OperationalError',
]);

export const CELERIAC_MODULE = 'celeriac';

/** JS built-in error names whose closest Python meaning is not the class of the same name. */
const JS_TO_PYTHON: Readonly<Record<string, string>> = { Error: 'Exception', RangeError: 'ValueError', SyntaxError: 'ValueError' };
const OWN_CELERY_ERRORS = new Set([
  'NotRegistered', 'TaskRevokedError', 'MaxRetriesExceededError', 'TimeLimitExceeded', 'SoftTimeLimitExceeded', 'ChordError',
]);
const LOOKS_LIKE_EXCEPTION = /(Error|Exception|Warning|Exit|Interrupt)$/;

/** A Python qualified class name made of identifiers; anything else is reduced to one. */
function sanitizeTypeName(name: string): string {
  const parts = name.split('.').map((p) => p.replace(/[^A-Za-z0-9_]/g, '')).filter((p) => p !== '');
  const fixed = parts.map((p) => (/^[0-9]/.test(p) ? `_${p}` : p));
  return fixed.length > 0 ? fixed.join('.') : 'Exception';
}

function isSafePair(type: string, module: string): boolean {
  if (module === CELERIAC_MODULE) return true;
  if (module === 'builtins') return PYTHON_BUILTIN_EXCEPTIONS.has(type);
  if (module === 'celery.exceptions') return CELERY_EXCEPTIONS.has(type);
  const last = type.slice(type.lastIndexOf('.') + 1);
  return /^[A-Z]/.test(last) && LOOKS_LIKE_EXCEPTION.test(last) && /^[A-Za-z_][A-Za-z0-9_.]*$/.test(module);
}

function pair(type: string, module: string, message: unknown[]): ExceptionInfo {
  const t = sanitizeTypeName(type);
  return { exc_type: t, exc_message: message, exc_module: isSafePair(t, module) ? module : CELERIAC_MODULE };
}

function thrownValueText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

function isErrorLike(v: unknown): v is Error {
  if (v instanceof Error) return true;
  return typeof v === 'object' && v !== null && typeof (v as Error).name === 'string' &&
    typeof (v as Error).message === 'string';
}

export function errorToException(err: unknown): ExceptionInfo {
  if (!isErrorLike(err)) return { exc_type: 'Exception', exc_message: [thrownValueText(err)], exc_module: 'builtins' };
  if (err instanceof TaskRevokedError) return pair('TaskRevokedError', 'celery.exceptions', [err.why]);
  // A remote failure passed on (a chord dependency, a re-raise) keeps the class its own worker reported.
  if (err instanceof TaskError) return pair(err.excType, err.excModule ?? CELERIAC_MODULE, err.excMessage);
  // an error may carry Celery's own arguments (e.g. TimeLimitExceeded(30) has the limit, not a sentence)
  const args = (err as { excArgs?: unknown }).excArgs;
  const message = Array.isArray(args) ? args : [err.message];
  const own = (err as { excModule?: unknown }).excModule;
  const name = err.name || 'Error';
  if (typeof own === 'string' && own !== '') return pair(name, own, message);
  if (name in JS_TO_PYTHON) return pair(JS_TO_PYTHON[name], 'builtins', message);
  if (PYTHON_BUILTIN_EXCEPTIONS.has(name)) return pair(name, 'builtins', message);
  if (OWN_CELERY_ERRORS.has(name)) return pair(name, 'celery.exceptions', message);
  return pair(name, CELERIAC_MODULE, message);
}

export function exceptionToError(taskId: string, info: unknown, traceback: string | null): Error {
  if (typeof info !== 'object' || info === null || Array.isArray(info) || typeof (info as ExceptionInfo).exc_type !== 'string') {
    // Not an exception object at all: keep whatever was stored as the message rather than lose it.
    const text = info === null || info === undefined ? [] : [info];
    return new TaskError(taskId, 'Exception', null, text, traceback);
  }
  const { exc_type: type, exc_message: raw, exc_module: module } = info as Record<string, unknown> & ExceptionInfo;
  const message = Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw];
  if (type === 'TaskRevokedError') {
    const why = message.length > 0 ? String(message[0]) : 'revoked';
    return new TaskRevokedError(taskId, why);
  }
  return new TaskError(taskId, type, typeof module === 'string' ? module : null, message, traceback);
}

export function formatTraceback(err: unknown): string | null {
  if (err === null || err === undefined) return null;
  if (!isErrorLike(err)) return `Exception: ${thrownValueText(err)}`;
  const lines: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  // Follow `cause` a few levels, like Python's "The above exception was the direct cause" chain.
  while (isErrorLike(current) && !seen.has(current) && seen.size < 5) {
    seen.add(current);
    lines.push(typeof current.stack === 'string' && current.stack !== '' ? current.stack : `${current.name}: ${current.message}`);
    current = (current as { cause?: unknown }).cause;
  }
  return lines.join('\n\nCaused by: ');
}
