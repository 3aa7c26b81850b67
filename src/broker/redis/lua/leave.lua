-- leave: a celeriac worker withdraws; the last one alive hands every parked message back to its queue.
-- KEYS[1] celeriac.workers (zset: instance -> alive-until ms), KEYS[2] celeriac.eta.
-- ARGV[1] instance, ARGV[2] now (ms), ARGV[3] wake-up channel prefix.
-- Returns { other workers alive, messages unparked }. ZREM and the count are one step, so of two workers leaving at
-- once at least one sees the other gone.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local alive = redis.call('ZCARD', KEYS[1])
if alive > 0 then return { alive, 0 } end
local moved = 0
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, member in ipairs(members) do
  redis.call('ZREM', KEYS[2], member)
  moved = moved + move_back(member, ARGV[3])
end
return { 0, moved }
