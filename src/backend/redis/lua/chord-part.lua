-- chord-part: Celery's native chord join on Redis (docs/wire-format.md §8.5).
-- KEYS[1] celery-taskset-meta-<gid>.j (zset), KEYS[2] …t (extra size), KEYS[3] …s (header size).
-- ARGV[1] score (group_index, or 'inf'), ARGV[2] member JSON [1, tid, state, result], ARGV[3] expiry seconds (0: none),
-- ARGV[4] the part's task id.
-- A part counts once per task id and keeps its FIRST stored run (backend.ts, promise 5): a redelivered part whose
-- member is already there, or whose earlier run stored another state or result (a member with the same task id and
-- score, its group_index), adds nothing. The join is otherwise Celery's own (ZADD, ZCOUNT, GET .t, GET .s, EXPIRE),
-- so Python and celeriac workers count the same members; only a Python worker's second run can still add a second
-- member for one task, as Python itself does.
-- Returns the zset members in score order when the header is complete after this call, else an empty list.
-- A redelivered part whose member is already there still completes the chord: if the worker that first completed it
-- died before publishing the body (and before the cleanup that deletes these keys), the body is not lost; at worst
-- it is published twice (at-least-once, like every task), with the same results.
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  local seen = false
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
    local ok, rec = pcall(cjson.decode, old)
    if ok and type(rec) == 'table' and rec[2] == ARGV[4] then
      seen = true
      break
    end
  end
  if not seen then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) end
end
local count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
local extra = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = tonumber(redis.call('GET', KEYS[3]) or '-1') or -1
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl); redis.call('EXPIRE', KEYS[2], ttl); redis.call('EXPIRE', KEYS[3], ttl)
end
if size >= 0 and count == size + extra then
  return redis.call('ZRANGE', KEYS[1], 0, -1)
end
return {}
