-- store: write a task record the way Celery's Redis backend does (SETEX + PUBLISH on a channel of the same name),
-- but never replace a stored SUCCESS (Python GETs and skips; here it is atomic).
-- KEYS[1] celery-task-meta-<id>. ARGV[1] record JSON, ARGV[2] expiry in seconds (0: none).
-- Returns 1 when written, 0 when a SUCCESS was already there.
local old = redis.call('GET', KEYS[1])
if old then
  local ok, rec = pcall(cjson.decode, old)
  if ok and type(rec) == 'table' and rec['status'] == 'SUCCESS' then return 0 end
end
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('SETEX', KEYS[1], ttl, ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
