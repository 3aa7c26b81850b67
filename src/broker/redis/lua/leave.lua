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
  local nl = string.find(member, '\n', 1, true)
  redis.call('ZREM', KEYS[2], member)
  if nl then
    local list = string.sub(member, 1, nl - 1)
    redis.call('RPUSH', list, string.sub(member, nl + 1))
    moved = moved + 1
    local band = string.find(list, '\6\22', 1, true)
    redis.call('PUBLISH', ARGV[3] .. (band and string.sub(list, 1, band - 1) or list), '')
  end
end
return { 0, moved }
