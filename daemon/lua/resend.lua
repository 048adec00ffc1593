-- Operator's choice: send again the recipients that ended 'uncertain' (the
-- process died while their transfer was in flight, so they may or may not
-- have been sent). Each goes back through the retry set, claimed afresh.
-- KEYS[1] campaign hash   KEYS[2] message hash   KEYS[3] retry zset
-- ARGV: now_ms, id
-- Returns the number of recipients queued again.
local ck, mk, rz = KEYS[1], KEYS[2], KEYS[3]
local now, id = tonumber(ARGV[1]), ARGV[2]
local spec = redis.call('HGET', ck, 'spec')
if not spec then return redis.error_reply('no such campaign') end
local chans = cjson.decode(spec).channels or {}
local index = {}
for i, c in ipairs(chans) do index[c] = i - 1 end
local n = 0
local cursor = '0'
repeat
  local res = redis.call('HSCAN', mk, cursor, 'COUNT', 1000)
  cursor = res[1]
  local kv = res[2]
  for i = 1, #kv, 2 do
    local field, raw = kv[i], kv[i + 1]
    if string.sub(field, 1, 4) ~= 'dup:' then
      local r = cjson.decode(raw)
      if r.state == 'uncertain' and index[r.channel] then
        r.state = 'retry'
        r.error = 'resend_uncertain'
        r.at = now
        redis.call('HSET', mk, field, cjson.encode(r))
        redis.call('ZADD', rz, now, id .. '|' .. r.slot .. '|' .. index[r.channel])
        n = n + 1
      end
    end
  end
until cursor == '0'
if n > 0 then
  redis.call('HINCRBY', ck, 'uncertain', -n)
  if redis.call('HGET', ck, 'state') == 'done' then
    redis.call('HSET', ck, 'state', 'running')
  end
end
return n
