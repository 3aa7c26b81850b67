/**
 * The SQLite driver (better-sqlite3), loaded on first use rather than at import, so that a program that never opens
 * a sqlite:// URL runs without it, and a missing or unbuilt driver is one coded error naming the fix instead of a
 * crash while modules load. better-sqlite3 is an optional dependency: npm installs it when it can build or download
 * it, and goes on without it when it cannot (a Redis-only deployment does not need it).
 *
 * The types below are the part of the driver's API that celeriac uses, declared here so that neither our published
 * declarations nor a user's compiler need `@types/better-sqlite3`.
 */
import { createRequire } from 'node:module';
import { CeleriacError, ErrorCode } from '../../common/errors.ts';

export interface Statement<R = unknown> {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): R | undefined;
  all(...params: unknown[]): R[];
  /** Return the first column of each row instead of the row. */
  pluck(toggle?: boolean): Statement<R>;
}

export interface Transaction<F extends (...args: never[]) => unknown> {
  (...args: Parameters<F>): ReturnType<F>;
  immediate(...args: Parameters<F>): ReturnType<F>;
}

export interface Db {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<R> & { readonly __params?: P };
  transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): Db;
  close(): Db;
}

type DatabaseConstructor = new (file: string, options?: { timeout?: number }) => Db;

let driver: DatabaseConstructor | null = null;

/** The driver's Database class; throws E_SQLITE_DRIVER when better-sqlite3 is not installed or not built. */
export function sqliteDriver(): DatabaseConstructor {
  if (driver) return driver;
  try {
    driver = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
    return driver;
  } catch (err) {
    throw new CeleriacError(ErrorCode.SqliteDriver,
      'the embedded SQLite store (sqlite:// URLs, the default) needs the better-sqlite3 driver, which is not ' +
      `installed or did not build (${(err as Error).message.split('\n')[0]}). Fix: npm install better-sqlite3@12 ` +
      '(it needs a C++ toolchain where no prebuilt binary exists), or set broker and backend to a redis:// URL.',
      { cause: err });
  }
}
