-- reserve: pop up to ARGV[1] messages from the queue lists KEYS[5..] in order and reserve each (see reserve-one.lua).
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases, KEYS[4] dead-letter list, KEYS[5..] band lists, band-major.
-- ARGV[1] max, ARGV[2] now (unix s), ARGV[3] lease expiry (unix s), ARGV[4] now as ISO text,
-- ARGV[5] maxMessageBytes, ARGV[6] dead letters kept, ARGV[7] bytes of a message a dead letter keeps,
-- ARGV[8..] the queue name of each KEYS[5..].
-- Returns the flat list built by reserve_one (five items per message).
local max = tonumber(ARGV[1])
local lim = { max = tonumber(ARGV[5]), keep = tonumber(ARGV[6]), head = tonumber(ARGV[7]) }
local out = {}
local n = 0
for i = 5, #KEYS do
  while n < max do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    n = n + 1
    reserve_one(out, lim, raw, ARGV[i + 3], ARGV[2], ARGV[3], ARGV[4])
  end
  if n >= max then break end
end
return out
