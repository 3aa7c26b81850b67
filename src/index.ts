/** The public API of celeriac, named one by one. */
export { Celeriac } from './app/app.ts';
export type { CeleriacConfig, Route } from './app/config.ts';
export { Task } from './task/task.ts';
export type { TaskHandler } from './task/task.ts';
export type { TaskOptions, ApplyOptions, RetryOptions } from './task/options.ts';
export type { TaskContext, TaskRequest } from './task/context.ts';
export { AsyncResult } from './task/async-result.ts';
export type { GetOptions, ResultHandle, RevokeOptions } from './task/async-result.ts';
export { GroupResult } from './task/group-result.ts';
export { Signature, chain, group, chord } from './task/signature.ts';
export type { SignatureOptions } from './task/signature.ts';
export { Worker } from './worker/worker.ts';
export { Control } from './control/control.ts';
export type { BroadcastOptions, InspectMethod } from './control/control.ts';
export type { WorkerOptions } from './worker/worker.ts';
export type { TaskState } from './protocol/index.ts';
export { every, crontab, IntervalSchedule, CrontabSchedule } from './beat/schedules.ts';
export type { Schedule, EverySpec, CrontabSpec, CrontabField } from './beat/schedules.ts';
export type { BeatEntry, BeatEntryOptions } from './beat/entry.ts';
export { Beat } from './beat/beat.ts';
export type { BeatOptions, BeatSend, BeatClock } from './beat/beat.ts';
export {
  CeleriacError, ErrorCode, TaskError, TaskRevokedError, TimeoutError, NotRegisteredError, NotJsonError,
  MaxRetriesExceededError, MalformedMessageError,
} from './common/errors.ts';
export { createLogger } from './common/logger.ts';
export type { Logger, LogLevel } from './common/logger.ts';
