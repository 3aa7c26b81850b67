-- store: write task records the way Celery's Redis backend does (SETEX + PUBLISH on a channel of the same name),
-- many at once, but never replace a stored SUCCESS (Python GETs and skips; here it is atomic).
-- KEYS[i] celery-task-meta-<id>. ARGV[1] expiry in seconds (0: none), ARGV[i + 1] the record JSON for KEYS[i].
-- Returns how many records were written (the others found a SUCCESS already there).
local ttl = tonumber(ARGV[1])
local written = 0
for i, key in ipairs(KEYS) do
  local old = redis.call('GET', key)
  local keep = false
  if old then
    local ok, rec = pcall(cjson.decode, old)
    keep = ok and type(rec) == 'table' and rec['status'] == 'SUCCESS'
  end
  if not keep then
    local json = ARGV[i + 1]
    if ttl and ttl > 0 then
      redis.call('SETEX', key, ttl, json)
    else
      redis.call('SET', key, json)
    end
    redis.call('PUBLISH', key, json)
    written = written + 1
  end
end
return written
