-- record: reserve messages that a blocking pop already took off their list (see reserve-one.lua).
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases, KEYS[4] dead-letter list.
-- ARGV[1] now (unix s), ARGV[2] lease expiry (unix s), ARGV[3] now as ISO text, ARGV[4] queue name, ARGV[5..] raw messages.
-- Returns the flat list built by reserve_one.
local out = {}
for i = 5, #ARGV do
  reserve_one(out, ARGV[i], ARGV[4], ARGV[1], ARGV[2], ARGV[3])
end
return out
