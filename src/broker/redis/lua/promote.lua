-- promote: move parked messages whose time has come back to the consuming end of their lists, each exactly once
-- (ZREM and RPUSH happen together, so concurrent promoters cannot both move a message).
-- KEYS[1] celeriac.eta. ARGV[1] now (ms since epoch), ARGV[2] limit, ARGV[3] wake-up channel prefix
-- (a queue's channel is the prefix + the queue name, the list key up to its priority-band separator).
-- Returns { moved, next due time in ms or -1 }.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, member in ipairs(due) do
  local nl = string.find(member, '\n', 1, true)
  redis.call('ZREM', KEYS[1], member)
  if nl then
    local list = string.sub(member, 1, nl - 1)
    redis.call('RPUSH', list, string.sub(member, nl + 1))
    moved = moved + 1
    local band = string.find(list, '\6\22', 1, true)
    redis.call('PUBLISH', ARGV[3] .. (band and string.sub(list, 1, band - 1) or list), '')
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return { moved, nxt[2] } end
return { moved, '-1' }
