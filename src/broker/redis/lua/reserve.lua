-- reserve: pop up to ARGV[1] messages from the queue lists KEYS[5..] in order and reserve each (see reserve-one.lua).
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases, KEYS[4] dead-letter list, KEYS[5..] band lists, band-major.
-- ARGV[1] max, ARGV[2] now (unix s), ARGV[3] lease expiry (unix s), ARGV[4] now as ISO text,
-- ARGV[5..] the queue name of each KEYS[5..].
-- Returns the flat list built by reserve_one.
local max = tonumber(ARGV[1])
local out = {}
local n = 0
for i = 5, #KEYS do
  while n < max do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    n = n + 1
    reserve_one(out, raw, ARGV[i], ARGV[2], ARGV[3], ARGV[4])
  end
  if n >= max then break end
end
return out
