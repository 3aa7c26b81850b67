/** The CLI's only ways out: print, fail with one clear line, or exit. Stack traces only at -l debug. */
import { CeleriacError } from '../common/errors.ts';

export class UsageError extends Error {}

let debug = false;

export function setDebug(on: boolean): void {
  debug = on;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function fatal(err: unknown): never {
  const e = err as Error;
  const code = err instanceof CeleriacError ? ` [${err.code}]` : '';
  process.stderr.write(`celeriac: error: ${e?.message ?? String(err)}${code}\n`);
  if (debug) {
    // the cause's stack shows where the user's code failed (e.g. a task module that throws while loading)
    for (let cur: unknown = err; cur instanceof Error; cur = cur.cause) process.stderr.write(`${cur.stack}\n`);
  }
  process.exit(err instanceof UsageError ? 2 : 1);
}
