-- defer: park a reserved message until it is due and release its reservation, in one step.
-- KEYS[1] unacked, KEYS[2] unacked_index, KEYS[3] leases, KEYS[4] celeriac.eta (zset).
-- ARGV[1] tag, ARGV[2] due time (ms since epoch), ARGV[3] member: "<target list key>\n<raw envelope>".
-- Returns 1 when parked, 0 when the reservation was already gone (acked, or recovered by someone else).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
