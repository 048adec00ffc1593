-- Create a campaign atomically, once per id: snapshot its recipients into
-- its own list, store the spec and counters, and either emit its chunks or
-- schedule its start. Running it twice for one id changes nothing.
-- KEYS[1] campaign hash   KEYS[2] campaign recipient list
-- KEYS[3] chunks stream    KEYS[4] source recipients_list ("" if inline)
-- KEYS[5] scheduled zset   KEYS[6] active zset (optional: else the prefix of
-- KEYS[5] + 'active')   KEYS[7] campaign index zset (optional: else the prefix
-- of KEYS[5] + 'campaigns'): every campaign but a message job, by created_at
-- ARGV: spec, now_ms, chunk_size[:ahead], send_at_ms, id, type, inline
-- recipients... With ahead, only the first `ahead` chunks go to the stream
-- now; next.lua adds one as each finishes (next_chunk: where the next
-- starts). Without, every chunk goes now.
local ck, rk, chunks, src, sched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local active = KEYS[6] or (string.sub(sched, 1, -10) .. 'active')
local spec, now, send_at, id, jtype = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4]), ARGV[5],
    ARGV[6]
local size, ahead = string.match(ARGV[3], '^(%d+):?(%d*)$')
size, ahead = tonumber(size), tonumber(ahead)

if redis.call('EXISTS', ck) == 1 then
  return {'exists', redis.call('HGET', ck, 'state') or ''}
end

local total = 0
if #ARGV > 6 then
  for i = 7, #ARGV, 1000 do
    local j = math.min(i + 999, #ARGV)
    redis.call('RPUSH', rk, unpack(ARGV, i, j))
  end
  total = #ARGV - 6
else
  local t = redis.call('TYPE', src)['ok']
  if t ~= 'list' then
    return {'empty', t}
  end
  redis.call('DEL', rk)
  redis.call('COPY', src, rk)
  total = redis.call('LLEN', rk)
end
if total == 0 then
  return {'empty', 'list'}
end

local nchunks = math.floor((total + size - 1) / size)
local state = 'running'
if send_at > now then state = 'scheduled' end
redis.call('HSET', ck, 'id', id, 'type', jtype, 'spec', spec, 'state', state, 'total', total,
  'sent', 0, 'failed', 0, 'suppressed', 0, 'uncertain', 0, 'cancelled', 0,
  'delivered', 0, 'read', 0, 'replied', 0, 'opted_out', 0, 'failed_after_send', 0,
  'duplicates', 0, 'chunks', nchunks, 'chunk_size', size, 'created_at', now)
if ahead and ahead > 0 then redis.call('HSET', ck, 'ahead', ahead, 'next_chunk', 0) end
-- the list of campaigns (GET /v1/campaigns, omnicast campaigns) reads this
-- index, newest first; a message job is a conversation's, not listed
if jtype ~= 'message' then
  redis.call('ZADD', KEYS[7] or (string.sub(sched, 1, -10) .. 'campaigns'), now, id)
end

if state == 'scheduled' then
  redis.call('ZADD', sched, send_at, 'start:' .. id)
  return {'scheduled', total, nchunks}
end
redis.call('HSET', ck, 'started_at', now)
redis.call('ZADD', active, now, id)
local first = nchunks
if ahead and ahead > 0 and ahead < nchunks then first = ahead end
for s = 0, first - 1 do
  local b = s * size
  local e = math.min(b + size, total)
  redis.call('XADD', chunks, '*', 'c', id, 's', b, 'e', e)
end
if ahead and ahead > 0 then redis.call('HSET', ck, 'next_chunk', math.min(first * size, total)) end
return {'created', total, nchunks}
