-- promote: move parked messages whose time has come back to the consuming end of their lists, each exactly once
-- (ZREM and RPUSH happen together, so concurrent promoters cannot both move a message).
-- KEYS[1] celeriac.eta. ARGV[1] now (ms since epoch), ARGV[2] limit, ARGV[3] wake-up channel prefix
-- (a queue's channel is the prefix + the queue name, the list key up to its priority-band separator).
-- Returns { moved, next due time in ms or -1 }.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  moved = moved + move_back(member, ARGV[3])
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return { moved, nxt[2] } end
return { moved, '-1' }
