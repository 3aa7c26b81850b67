-- Shared prelude of reserve.lua: record one popped message as reserved, or set it aside.
-- Needs KEYS[1] unacked (hash), KEYS[2] unacked_index (zset), KEYS[3] leases (zset), KEYS[4] dead-letter list.
-- A reserved message is written exactly as kombu writes it (HSET unacked tag [envelope, exchange, routing_key];
-- ZADD unacked_index now tag), so Python workers can recover it, plus a celeriac lease (ZADD leases expiry tag).
-- Appends to `out`: 'R', queue, tag, raw   or   'D', queue, reason, raw. A message set aside ('D') is pushed to the
-- dead-letter list as {reason, queue, raw, at}, the entry every broker builds (src/stores/dead-letter.ts).
-- The fast path reads the tag and routing from the envelope's last "properties" object (kombu and celeriac both
-- serialise it last) without decoding the whole message; anything unusual takes the full cjson path below.
local function quick_read(raw)
  local p, pos = nil, 1
  while true do
    local i = string.find(raw, '"properties"', pos, true)
    if not i then break end
    p, pos = i, i + 1
  end
  if not p then return nil end
  local props = string.sub(raw, p)
  local tag = string.match(props, '"delivery_tag"%s*:%s*"([^"\\]+)"')
  local exchange = string.match(props, '"exchange"%s*:%s*"([^"\\]*)"')
  local routing_key = string.match(props, '"routing_key"%s*:%s*"([^"\\]*)"')
  if not tag or not exchange or not routing_key then return nil end
  return tag, exchange, routing_key
end

local function reserve_one(out, raw, queue, now, lease_until, now_iso)
  local reason
  local tag, exchange, routing_key = quick_read(raw)
  if tag then
    redis.call('HSET', KEYS[1], tag, '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
    redis.call('ZADD', KEYS[2], now, tag)
    redis.call('ZADD', KEYS[3], lease_until, tag)
    out[#out + 1] = 'R'; out[#out + 1] = queue; out[#out + 1] = tag; out[#out + 1] = raw
    return
  end
  exchange, routing_key = '', queue
  local ok, env = pcall(cjson.decode, raw)
  if not ok or type(env) ~= 'table' then
    reason = 'not a JSON object'
  elseif type(env['properties']) ~= 'table' then
    reason = 'no properties object'
  else
    tag = env['properties']['delivery_tag']
    if type(tag) ~= 'string' or tag == '' then
      reason = 'no delivery_tag in properties'
    else
      local info = env['properties']['delivery_info']
      if type(info) == 'table' then
        if type(info['exchange']) == 'string' then exchange = info['exchange'] end
        if type(info['routing_key']) == 'string' then routing_key = info['routing_key'] end
      end
    end
  end
  if reason then
    redis.call('LPUSH', KEYS[4], cjson.encode({reason = reason, queue = queue, raw = raw, at = now_iso}))
    out[#out + 1] = 'D'; out[#out + 1] = queue; out[#out + 1] = reason; out[#out + 1] = raw
    return
  end
  redis.call('HSET', KEYS[1], tag, '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
  redis.call('ZADD', KEYS[2], now, tag)
  redis.call('ZADD', KEYS[3], lease_until, tag)
  out[#out + 1] = 'R'; out[#out + 1] = queue; out[#out + 1] = tag; out[#out + 1] = raw
end
