-- Shared prelude of promote.lua and leave.lua: put one parked member ("<list key>\n<raw>") back at the consuming end
-- of its list and wake the queue's consumers (channel = prefix + the list key up to its priority-band separator).
-- Returns 1 when moved, 0 for a member without a list key.
local function move_back(member, wake_prefix)
  local nl = string.find(member, '\n', 1, true)
  if not nl then return 0 end
  local list = string.sub(member, 1, nl - 1)
  redis.call('RPUSH', list, string.sub(member, nl + 1))
  local band = string.find(list, '\6\22', 1, true)
  redis.call('PUBLISH', wake_prefix .. (band and string.sub(list, 1, band - 1) or list), '')
  return 1
end
