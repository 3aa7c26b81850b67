-- Shared prelude of reserve.lua: record one popped message as reserved, or set it aside.
-- Needs KEYS[1] unacked (hash), KEYS[2] unacked_index (zset), KEYS[3] leases (zset), KEYS[4] dead-letter list.
-- A reserved message is written exactly as kombu writes it (HSET unacked tag [envelope, exchange, routing_key];
-- ZADD unacked_index now tag), so Python workers can recover it, plus a celeriac lease (ZADD leases expiry tag).
-- Appends to `out`: 'R', queue, tag, raw, ''   or   'D', queue, reason, raw, task id ('' when not looked for).
-- A message set aside ('D') is pushed to the dead-letter list as {reason, queue, raw, at, size, sha1, truncated},
-- the entry every broker builds (src/stores/dead-letter.ts): raw is the head of the message (lim.head bytes, cut at
-- a UTF-8 boundary), size its length in bytes, sha1 the hash of all of it; the list keeps lim.keep entries (LTRIM).
-- A message over lim.max bytes is refused before anything else reads it: its 'D' carries only the head, and the
-- task id found in its headers without decoding it. A delivery tag that is not valid UTF-8 is refused too: the
-- reply's tag would reach JavaScript decoded (bad bytes replaced), so no ack could ever end its reservation.
-- The fast path reads the tag and routing from the envelope's last "properties" object (kombu and celeriac both
-- serialise it last) without decoding the whole message; anything unusual takes the full cjson path below.

-- Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF); Redis's Lua 5.1 has no utf8 library.
local function valid_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len, lo, hi = 1, 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c == 0xE0 then len, lo = 3, 0xA0
    elseif c >= 0xE1 and c <= 0xEC then len = 3
    elseif c == 0xED then len, hi = 3, 0x9F
    elseif c >= 0xEE and c <= 0xEF then len = 3
    elseif c == 0xF0 then len, lo = 4, 0x90
    elseif c >= 0xF1 and c <= 0xF3 then len = 4
    elseif c == 0xF4 then len, hi = 4, 0x8F
    else return false end
    if len > 1 then
      if i + len - 1 > n then return false end
      local c2 = string.byte(s, i + 1)
      if c2 < lo or c2 > hi then return false end
      for j = i + 2, i + len - 1 do
        local cj = string.byte(s, j)
        if cj < 0x80 or cj > 0xBF then return false end
      end
    end
    i = i + len
  end
  return true
end

-- The first `limit` bytes of raw, shortened so that a multi-byte UTF-8 character is not cut in two.
local function head_of(raw, limit)
  if #raw <= limit then return raw end
  local cut = limit
  for _ = 1, 3 do
    local c = string.byte(raw, cut + 1)
    if not c or c < 0x80 or c > 0xBF then break end
    cut = cut - 1
  end
  return string.sub(raw, 1, cut)
end

-- The task id of a protocol-2 message ("id" in its headers object) found without decoding it: the first "id" key
-- of the headers object before any nested object, within 64 KiB of its start. '' when not found that way.
local function header_task_id(raw)
  local h = string.find(raw, '"headers"%s*:%s*{')
  if not h then return '' end
  local part = string.sub(raw, h, h + 65535)
  local id = string.match(part, '^"headers"%s*:%s*{[^{}]-"id"%s*:%s*"([^"\\]+)"')
  return id or ''
end

local function dead_letter(out, lim, queue, reason, raw, now_iso, reply_raw, task_id)
  local head = head_of(raw, lim.head)
  redis.call('LPUSH', KEYS[4], cjson.encode({
    reason = reason, queue = queue, raw = head, at = now_iso, size = #raw, sha1 = redis.sha1hex(raw),
    truncated = #head < #raw,
  }))
  redis.call('LTRIM', KEYS[4], 0, lim.keep - 1)
  out[#out + 1] = 'D'; out[#out + 1] = queue; out[#out + 1] = reason; out[#out + 1] = reply_raw
  out[#out + 1] = task_id
end

local function reserved(out, queue, raw, tag, exchange, routing_key, now, lease_until)
  redis.call('HSET', KEYS[1], tag, '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
  redis.call('ZADD', KEYS[2], now, tag)
  redis.call('ZADD', KEYS[3], lease_until, tag)
  out[#out + 1] = 'R'; out[#out + 1] = queue; out[#out + 1] = tag; out[#out + 1] = raw; out[#out + 1] = ''
end

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

local function reserve_one(out, lim, raw, queue, now, lease_until, now_iso)
  if #raw > lim.max then
    local reason = 'message of ' .. #raw .. ' bytes is over maxMessageBytes (' .. lim.max .. ')'
    dead_letter(out, lim, queue, reason, raw, now_iso, head_of(raw, lim.head), header_task_id(raw))
    return
  end
  local reason
  local tag, exchange, routing_key = quick_read(raw)
  if tag and valid_utf8(tag) then
    reserved(out, queue, raw, tag, exchange, routing_key, now, lease_until)
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
    elseif not valid_utf8(tag) then
      reason = 'delivery_tag in properties is not valid UTF-8'
    else
      local info = env['properties']['delivery_info']
      if type(info) == 'table' then
        if type(info['exchange']) == 'string' then exchange = info['exchange'] end
        if type(info['routing_key']) == 'string' then routing_key = info['routing_key'] end
      end
    end
  end
  if reason then
    dead_letter(out, lim, queue, reason, raw, now_iso, raw, '')
    return
  end
  reserved(out, queue, raw, tag, exchange, routing_key, now, lease_until)
end
