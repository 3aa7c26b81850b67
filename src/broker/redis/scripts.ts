/** Loads the Lua scripts beside this file and registers them on a connection (EVALSHA with EVAL fallback). */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const read = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const prelude = read('reserve-one');

export const RESERVE_LUA = `${prelude}\n${read('reserve')}`;
export const RECORD_LUA = `${prelude}\n${read('record')}`;
export const RESTORE_LUA = read('restore');

export interface BrokerScripts {
  celeriacReserve(...args: (string | number)[]): Promise<string[]>;
  celeriacRecord(...args: (string | number)[]): Promise<string[]>;
  celeriacRestore(...args: (string | number)[]): Promise<number>;
}

export function defineBrokerScripts(redis: Redis): Redis & BrokerScripts {
  redis.defineCommand('celeriacReserve', { lua: RESERVE_LUA });
  redis.defineCommand('celeriacRecord', { lua: RECORD_LUA, numberOfKeys: 4 });
  redis.defineCommand('celeriacRestore', { lua: RESTORE_LUA, numberOfKeys: 4 });
  return redis as Redis & BrokerScripts;
}
