-- restore: put one reserved message back at the front (consuming end) of its list, if its reservation is still
-- the one the caller saw; concurrent sweepers (ours or kombu's WATCH/MULTI restore) therefore restore it once.
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases, KEYS[4] target list.
-- ARGV[1] tag, ARGV[2] raw envelope to push (already marked redelivered), ARGV[3] mode:
--   'owner'      the holder gives it back (warm shutdown, requeue): no checks beyond existence;
--   'lease'      a celeriac lease ran out: require leases score <= ARGV[4] (now);
--   'visibility' kombu's visibility timeout passed: require unacked_index score <= ARGV[5] and no live lease.
-- ARGV[6] wake-up channel of the queue (consumers waiting on it look at once).
-- Returns 1 when restored, 0 when someone else already acked, restored or renewed it.
local tag = ARGV[1]
if redis.call('HEXISTS', KEYS[1], tag) == 0 then
  redis.call('ZREM', KEYS[2], tag)
  redis.call('ZREM', KEYS[3], tag)
  return 0
end
local mode = ARGV[3]
if mode ~= 'owner' then
  local lease = redis.call('ZSCORE', KEYS[3], tag)
  if mode == 'lease' then
    if not lease or tonumber(lease) > tonumber(ARGV[4]) then return 0 end
  else
    if lease and tonumber(lease) > tonumber(ARGV[4]) then return 0 end
    local reserved_at = redis.call('ZSCORE', KEYS[2], tag)
    if reserved_at and tonumber(reserved_at) > tonumber(ARGV[5]) then return 0 end
  end
end
redis.call('HDEL', KEYS[1], tag)
redis.call('ZREM', KEYS[2], tag)
redis.call('ZREM', KEYS[3], tag)
redis.call('RPUSH', KEYS[4], ARGV[2])
if ARGV[6] then redis.call('PUBLISH', ARGV[6], '') end
return 1
