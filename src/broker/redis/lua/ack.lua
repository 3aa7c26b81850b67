-- ack: end reservations. KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases; ARGV the delivery tags.
-- A script, not MULTI: Redis refuses every command queued in a MULTI while it is over maxmemory, and a worker must
-- still be able to acknowledge (which frees memory) on a full Redis. HDEL and ZREM never grow memory.
-- Chunks keep unpack() under Lua's C-stack limit.
local n = #ARGV
for i = 1, n, 500 do
  local last = math.min(i + 499, n)
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[3], unpack(ARGV, i, last))
end
return n
