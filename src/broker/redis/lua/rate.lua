-- rate: take one turn of a rate-limited task (the rule of src/stores/rate.ts), on Redis's clock so that every
-- machine agrees. KEYS[1] the task's key (a string: the next free start, ms); ARGV[1] interval ms, ARGV[2] ahead ms.
-- Returns {1, wait} (a turn, start after wait ms) or {0, wait} (no turn: ask again after wait ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if at < now then at = now end
local wait = at - now
if wait <= ahead then
  -- the key lives as long as it matters: past its time it means the same as no key
  redis.call('SET', KEYS[1], tostring(at + interval), 'PX', math.floor(wait + interval) + 1000)
  return {1, wait}
end
return {0, wait - ahead}
