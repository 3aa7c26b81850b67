-- beat-fire: send one due beat entry exactly once (fenced by the leader lock and the entry's last run).
-- KEYS[1] lock key, KEYS[2] state hash (entry -> last run ms), KEYS[3] target queue list.
-- ARGV[1] owner, ARGV[2] entry, ARGV[3] expected last run ('' = never ran), ARGV[4] new last run, ARGV[5] raw message,
-- ARGV[6] the queue's wake-up channel.
-- Returns 1 when sent, 0 when the lock is lost or another send already recorded a newer run.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if (last or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('LPUSH', KEYS[3], ARGV[5])
if ARGV[6] then redis.call('PUBLISH', ARGV[6], '') end
return 1
