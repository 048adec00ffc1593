-- The helpers every script shares, put in front of each script when the
-- daemon is built (CMakeLists.txt joins this file into one line, without
-- its comment lines, so a script's error messages keep its line numbers
-- off by one). Comments stay on lines of their own here.
--
-- A command over a long list, at most step arguments at a time (Lua's
-- unpack is limited), the answers joined into one table.
local function sliced(cmd, key, list, step)
  local res = {}
  for s = 1, #list, step do
    local part = redis.call(cmd, key, unpack(list, s, math.min(s + step - 1, #list)))
    if type(part) == 'table' then
      for k = 1, #part do res[s + k - 1] = part[k] end
    end
  end
  return res
end
-- A JSON string: as is when nothing needs escaping, else through cjson.
local function q(s)
  if not string.find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return cjson.encode(s)
end
-- The one "finished" rule: a campaign is finished when every recipient is
-- counted as sent, failed, suppressed, uncertain or cancelled. Given the
-- campaign hash, its id and its state as the caller knows it: a running
-- campaign becomes done, a cancelled one gets its finished_at; either way
-- the recipient list expires after 7 days and the campaign leaves the
-- active index. c, when given, holds the six counters as just read (total,
-- sent, failed, suppressed, uncertain, cancelled, in that order). Returns
-- true when it finished, and the counted sum and the total.
local function finish_if_done(prefix, ck, id, state, now, c)
  if state ~= 'running' and state ~= 'cancelled' then return false end
  c = c or redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain', 'cancelled')
  local total = tonumber(c[1])
  if not total then return false end
  local sum = 0
  for j = 2, 6 do sum = sum + (tonumber(c[j]) or 0) end
  if sum < total then return false, sum, total end
  if state == 'running' then redis.call('HSET', ck, 'state', 'done') end
  redis.call('HSET', ck, 'finished_at', now)
  redis.call('EXPIRE', ck .. ':rcpt', 604800)
  redis.call('ZREM', prefix .. 'active', id)
  return true, sum, total
end
