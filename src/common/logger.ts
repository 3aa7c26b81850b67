/**
 * Celery-style log lines: `[2026-11-30 08:00:00,123: INFO/MainProcess] message`, to stderr by default.
 * The process name mirrors Celery's (MainProcess) so log readers and greps carry over; `json` gives one JSON object a line.
 */
import { CeleriacError, ErrorCode } from './errors.ts';

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string): void;
  info(msg: string): void;
  warning(msg: string): void;
  error(msg: string): void;
  critical(msg: string): void;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'text' | 'json';
  write?: (line: string) => void;
  processName?: string;
}

export function parseLogLevel(value: string): LogLevel {
  const v = value.toLowerCase() === 'warn' ? 'warning' : value.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new CeleriacError(ErrorCode.BadOption, `unknown log level "${value}" (use one of ${LOG_LEVELS.join(', ')})`);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Local wall-clock time as Celery prints it: `2026-11-30 08:00:00,123`. */
export function celeryTimestamp(d = new Date()): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'warning';
  const threshold = RANK[level];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const processName = opts.processName ?? 'MainProcess';
  const json = opts.format === 'json';
  const log = (lvl: LogLevel, msg: string) => {
    if (RANK[lvl] < threshold) return;
    if (json) write(JSON.stringify({ time: new Date().toISOString(), level: lvl, process: processName, msg }));
    else write(`[${celeryTimestamp()}: ${lvl.toUpperCase()}/${processName}] ${msg}`);
  };
  return {
    level,
    debug: (m) => log('debug', m),
    info: (m) => log('info', m),
    warning: (m) => log('warning', m),
    error: (m) => log('error', m),
    critical: (m) => log('critical', m),
    enabled: (lvl) => RANK[lvl] >= threshold,
  };
}

/** For library use without a CLI: warnings and errors only. */
export const defaultLogger: Logger = createLogger();
