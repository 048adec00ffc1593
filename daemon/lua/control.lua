-- Campaign control: pause, resume, cancel. Every instance sees the new
-- state on its next claim (claims check it), so a pause takes effect within
-- one batch everywhere.
-- KEYS[1] campaign hash   KEYS[2] scheduled zset   KEYS[3] active zset
-- (optional: else the prefix of KEYS[2] + 'active')
-- ARGV: action, now_ms, id
-- Returns {ok|error, state}
local ck, sz = KEYS[1], KEYS[2]
local az = KEYS[3] or (string.sub(sz, 1, -10) .. 'active')
local action, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local st = redis.call('HGET', ck, 'state')
if not st then return {'error', 'no such campaign'} end
if action == 'pause' then
  if st == 'running' or st == 'scheduled' then
    redis.call('HSET', ck, 'state', 'paused', 'paused_from', st, 'paused_at', now)
    return {'ok', 'paused'}
  end
  if st == 'paused' then return {'ok', 'paused'} end
elseif action == 'resume' then
  if st == 'paused' then
    local from = redis.call('HGET', ck, 'paused_from') or 'running'
    redis.call('HSET', ck, 'state', from)
    -- running again: the sweep's index counts its idle time from now
    if from == 'running' then redis.call('ZADD', az, now, id) end
    return {'ok', from}
  end
  if st == 'running' or st == 'scheduled' then return {'ok', st} end
elseif action == 'cancel' then
  if st == 'cancelled' or st == 'done' then return {'ok', st} end
  local started = redis.call('HGET', ck, 'started_at')
  redis.call('HSET', ck, 'state', 'cancelled', 'cancelled_at', now)
  if not started then
    -- never started (scheduled, or paused before its start): nothing was
    -- claimed, so every recipient ends cancelled now
    redis.call('ZREM', sz, 'start:' .. id)
    local total = tonumber(redis.call('HGET', ck, 'total')) or 0
    redis.call('HSET', ck, 'cancelled', total, 'finished_at', now)
    redis.call('ZREM', az, id)
  else
    -- recipients whose chunk was never added (a chunks-ahead campaign) end
    -- cancelled now; the chunks in the stream cancel the rest as they come
    local c = redis.call('HMGET', ck, 'next_chunk', 'total')
    local nx, total = tonumber(c[1]), tonumber(c[2])
    if nx and total and nx < total then
      redis.call('HINCRBY', ck, 'cancelled', total - nx)
      redis.call('HSET', ck, 'next_chunk', total)
      local n = redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain',
        'cancelled')
      local sum = 0
      for j = 2, 6 do sum = sum + (tonumber(n[j]) or 0) end
      if sum >= total then
        redis.call('HSET', ck, 'finished_at', now)
        redis.call('ZREM', az, id)
      end
    end
  end
  return {'ok', 'cancelled'}
end
return {'error', 'cannot ' .. action .. ' a campaign that is ' .. st}
