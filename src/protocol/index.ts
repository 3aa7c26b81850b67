/**
 * The pure protocol layer: Celery 5 wire formats (envelope, task message, result record, exception object) as plain
 * functions over strings. No I/O; imports only src/common. See docs/wire-format.md §3, §7.
 */
export {
  parseEnvelope, decodeBody, encodeBody, markRedelivered, isPlainObject, JSON_CONTENT_TYPE, envelopeLimit, payloadBytes,
  type DeliveryInfo, type EnvelopeProperties, type Envelope,
} from './envelope.ts';
export {
  encodeTaskMessage, decodeTaskMessage, parseCeleryDate, formatCeleryDate,
  type Signature, type Embed, type TaskMessage, type NewTaskMessage,
} from './task-message.ts';
export { retryMessage, extraHeaders } from './derive.ts';
export { formatNaiveUtc } from './dates.ts';
export { EMPTY_EMBED } from './embed.ts';
export { pyRepr, argsRepr, REPR_MAXLEN } from './repr.ts';
export {
  resultKey, makeResultMeta, encodeResultMeta, decodeResultMeta, normalizeExceptionInfo,
  READY_STATES, EXCEPTION_STATES, ALL_STATES, RESULT_KEY_PREFIX,
  type TaskState, type ExceptionInfo, type ResultMeta,
} from './result-meta.ts';
export {
  errorToException, exceptionToError, formatTraceback,
  PYTHON_BUILTIN_EXCEPTIONS, CELERY_EXCEPTIONS, CELERIAC_MODULE,
} from './exceptions.ts';
export {
  encodeControlRequest, decodeControlRequest, encodeControlReply, decodeControlReply, encodeEvent, encodeEventBatch, eventBody,
} from './control.ts';
export type { ControlRequest } from './control.ts';
