-- renew: push out the leases of live reservations. KEYS[1] leases, KEYS[2] unacked_index;
-- ARGV[1] lease expiry and ARGV[2] now, in seconds (now is kombu's unacked_index score), ARGV[3..] the delivery tags.
-- ZADD XX only moves the scores of members that are there: a reservation acked meanwhile does not come back, and
-- memory does not grow. Redis refuses a command that may grow memory (ZADD) on a full Redis only when it is a
-- script's first write, so a ZREM of a member that never exists goes first: renewals must go on while Redis is full,
-- or every running task's lease would lapse and be run again elsewhere.
redis.call('ZREM', KEYS[1], '')
local n = #ARGV
for i = 3, n, 500 do
  local last = math.min(i + 499, n)
  local leases, index = {}, {}
  for j = i, last do
    leases[#leases + 1] = ARGV[1]
    leases[#leases + 1] = ARGV[j]
    index[#index + 1] = ARGV[2]
    index[#index + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], 'XX', unpack(leases))
  redis.call('ZADD', KEYS[2], 'XX', unpack(index))
end
return n - 2
