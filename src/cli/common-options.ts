/** What every command shares: the global options, their parsers, and the app they name (or the default one). */
import { InvalidArgumentError } from 'commander';
import type { LogLevel } from '../common/logger.ts';
import { Celeriac } from '../app/app.ts';
import { loadApp, type LoadedApp } from './load-app.ts';

export interface GlobalOptions {
  app?: string;
  broker?: string;
  backend?: string;
  loglevel: LogLevel;
}

export function number(what: string, { integer = false, min = 0 } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
      throw new InvalidArgumentError(`${what} must be a ${integer ? 'whole ' : ''}number${min > 0 ? ` ≥ ${min}` : ''}`);
    }
    return n;
  };
}

export function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function jsonArg(what: string) {
  return (value: string): unknown => {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw new InvalidArgumentError(`${what} must be JSON`);
    }
  };
}

/** The app of `-A`, or without it an app on the URLs given (or the default SQLite file). -b/--backend win over both. */
export async function appFrom(g: GlobalOptions): Promise<LoadedApp> {
  if (g.broker) process.env.CELERIAC_BROKER_URL = g.broker;
  if (g.backend) process.env.CELERIAC_RESULT_BACKEND = g.backend;
  if (g.app) return loadApp(g.app);
  return { app: new Celeriac('celeriac'), file: '' };
}
