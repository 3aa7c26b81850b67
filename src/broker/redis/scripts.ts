/** Loads the Lua scripts beside this file and registers them on a connection (EVALSHA with EVAL fallback). */
import type { Redis } from 'ioredis';
import { loadLua } from '../../stores/redis/lua.ts';

const read = (name: string) => loadLua(import.meta.url, name);
const prelude = read('reserve-one');

const RESERVE_LUA = `${prelude}\n${read('reserve')}`;
const RESTORE_LUA = read('restore');
const DEFER_LUA = read('defer');
const moveBack = read('move-back');
const PROMOTE_LUA = `${moveBack}\n${read('promote')}`;
const BEAT_FIRE_LUA = read('beat-fire');
const LOCK_LUA = read('lock');
const UNLOCK_LUA = read('unlock');
const ACK_LUA = read('ack');
const RENEW_LUA = read('renew');
const LEAVE_LUA = `${moveBack}\n${read('leave')}`;
const REVOKE_LUA = read('revoke');
const RATE_LUA = read('rate');

export interface BrokerScripts {
  celeriacReserve(...args: (string | number)[]): Promise<string[]>;
  celeriacRestore(...args: (string | number)[]): Promise<number>;
  celeriacDefer(...args: (string | number)[]): Promise<number>;
  celeriacPromote(key: string, now: number, limit: number, wakePrefix: string): Promise<[number, string]>;
  celeriacBeatFire(...args: (string | number)[]): Promise<number>;
  celeriacLock(key: string, owner: string, ttlMs: number): Promise<number>;
  celeriacUnlock(key: string, owner: string): Promise<number>;
  celeriacAck(unacked: string, index: string, leases: string, ...tags: string[]): Promise<number>;
  celeriacRenew(leases: string, index: string, leaseUntil: number, now: number, ...tags: string[]): Promise<number>;
  celeriacLeave(workers: string, eta: string, instance: string, now: number, wakePrefix: string): Promise<[number, number]>;
  celeriacRevoke(key: string, now: number, expiresAt: number, max: number, ...ids: string[]): Promise<number>;
  celeriacRate(key: string, intervalMs: number, aheadMs: number): Promise<[number, number]>;
}

export function defineBrokerScripts(redis: Redis): Redis & BrokerScripts {
  redis.defineCommand('celeriacReserve', { lua: RESERVE_LUA });
  redis.defineCommand('celeriacRestore', { lua: RESTORE_LUA, numberOfKeys: 4 });
  redis.defineCommand('celeriacDefer', { lua: DEFER_LUA, numberOfKeys: 4 });
  redis.defineCommand('celeriacPromote', { lua: PROMOTE_LUA, numberOfKeys: 1 });
  redis.defineCommand('celeriacBeatFire', { lua: BEAT_FIRE_LUA, numberOfKeys: 3 });
  redis.defineCommand('celeriacLock', { lua: LOCK_LUA, numberOfKeys: 1 });
  redis.defineCommand('celeriacUnlock', { lua: UNLOCK_LUA, numberOfKeys: 1 });
  redis.defineCommand('celeriacAck', { lua: ACK_LUA, numberOfKeys: 3 });
  redis.defineCommand('celeriacRenew', { lua: RENEW_LUA, numberOfKeys: 2 });
  redis.defineCommand('celeriacLeave', { lua: LEAVE_LUA, numberOfKeys: 2 });
  redis.defineCommand('celeriacRevoke', { lua: REVOKE_LUA, numberOfKeys: 1 });
  redis.defineCommand('celeriacRate', { lua: RATE_LUA, numberOfKeys: 1 });
  return redis as Redis & BrokerScripts;
}
