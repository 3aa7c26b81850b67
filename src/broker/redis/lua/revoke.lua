-- revoke: remember task ids as revoked. KEYS[1] celeriac.revoked (zset: task id -> expires at, ms);
-- ARGV[1] now (ms), ARGV[2] expires at (ms), ARGV[3] the most ids kept, ARGV[4..] the task ids.
-- An id stored again keeps the later of its two expiries. Then expired ids are pruned, and past the limit those
-- that expire soonest are dropped (the set keeps the `max` highest scores). The ZADD is the first write, so a full
-- Redis refuses the call (E_BROKER_FULL) rather than grow.
local key, now, untilMs, max = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do
  local old = redis.call('ZSCORE', key, ARGV[i])
  if not old or tonumber(old) < untilMs then redis.call('ZADD', key, untilMs, ARGV[i]) end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
redis.call('ZREMRANGEBYRANK', key, 0, -(max + 1))
return redis.call('ZCARD', key)
