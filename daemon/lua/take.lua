-- Due work, taken in one round trip: scheduled campaign starts and parked
-- chunks (from omni:scheduled) are turned into chunks; due retries (from
-- omni:retry) are leased (re-scored to now + lease) and returned, so a
-- process that dies holding them gives them back when the lease ends.
-- KEYS[1] retry zset   KEYS[2] scheduled zset   KEYS[3] chunks stream
-- ARGV: prefix, now_ms, lease_ms, max
-- Returns the due retry members.
local rz, sz, chunks = KEYS[1], KEYS[2], KEYS[3]
local prefix, now, lease, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

for _, m in ipairs(redis.call('ZRANGEBYSCORE', sz, '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', sz, m)
  local kind, rest = string.match(m, '^(%a+):(.*)$')
  if kind == 'start' then
    local ck = prefix .. 'campaign:' .. rest
    local st = redis.call('HMGET', ck, 'state', 'total', 'chunk_size', 'ahead')
    if st[1] == 'scheduled' then
      local total, size, ahead = tonumber(st[2]), tonumber(st[3]), tonumber(st[4])
      redis.call('HSET', ck, 'state', 'running', 'started_at', now)
      redis.call('ZADD', prefix .. 'active', now, rest)
      local n = math.floor((total + size - 1) / size)
      -- a chunks-ahead campaign: its first chunks; next.lua adds the rest
      if ahead and ahead > 0 and ahead < n then n = ahead end
      for s = 0, n - 1 do
        redis.call('XADD', chunks, '*', 'c', rest, 's', s * size, 'e', math.min((s + 1) * size, total))
      end
      if ahead and ahead > 0 then redis.call('HSET', ck, 'next_chunk', math.min(n * size, total)) end
    end
  elseif kind == 'chunk' then
    local c, b, e = string.match(rest, '^(.*):(%d+):(%d+)$')
    if c then redis.call('XADD', chunks, '*', 'c', c, 's', b, 'e', e) end
  end
end

local due = redis.call('ZRANGEBYSCORE', rz, '-inf', now, 'LIMIT', 0, max)
for _, m in ipairs(due) do
  redis.call('ZADD', rz, now + lease, m)
end
return due
