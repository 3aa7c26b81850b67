-- lock: take the lock when free, or extend it when the caller already holds it.
-- KEYS[1] lock key. ARGV[1] owner, ARGV[2] lease in ms. Returns 1 when the caller holds the lock afterwards.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
