-- Campaign control: pause, resume, cancel. Every instance sees the new
-- state on its next claim (claims check it), so a pause takes effect within
-- one batch everywhere.
-- KEYS[1] campaign hash   KEYS[2] scheduled zset; optional, else named
-- from the prefix of KEYS[2]: KEYS[3] active zset   KEYS[4] chunks stream
-- KEYS[5] retry zset   KEYS[6] message hash   KEYS[7] recipient list
-- ARGV: action, now_ms, id, then optionally lease_ms (default 30000) and
-- pairs of channel name, address kind (phone|email|any) as the daemon
-- resolves them (a channel not given is judged by its name)
-- Returns {'ok', state} or {'error', reason}; the reasons: unknown_campaign
-- (no such campaign, or an id with ':', which new jobs may not have),
-- campaign_finished (done, or cancelled with every recipient counted),
-- 'cannot ACTION a campaign that is STATE'.
-- Resume of a campaign paused before its start starts it when its send_at
-- has passed meanwhile. Cancel ends at once the campaign's recipients that
-- wait in the retry set (retries, quiet-hours deferrals) and not in an
-- instance's hands; it costs one pass over the retry set (ZSCAN).
local ck, sz = KEYS[1], KEYS[2]
local prefix = string.sub(sz, 1, -10) -- sz is prefix .. 'scheduled'
local action, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local az = KEYS[3] or (prefix .. 'active')
local chunks = KEYS[4] or (prefix .. 'chunks')
local rz = KEYS[5] or (prefix .. 'retry')
local mk = KEYS[6] or (prefix .. 'msg:' .. id)
local rk = KEYS[7] or (ck .. ':rcpt')
local lease = tonumber(ARGV[4] or '') or 30000

-- an id with ':' would name another campaign's keys (omni:campaign:a:rcpt)
if string.find(id, ':', 1, true) then return {'error', 'unknown_campaign'} end
local h = redis.call('HMGET', ck, 'state', 'finished_at', 'started_at', 'paused_from')
local st = h[1]
if not st then return {'error', 'unknown_campaign'} end
if st == 'done' or (st == 'cancelled' and h[2]) then return {'error', 'campaign_finished'} end

-- a glob pattern matching s literally
local function glob(s) return (string.gsub(s, '[%*%?%[%]\\]', '\\%0')) end

-- every member of zset key matching pattern, with its score
local function zscan(key, pattern)
  local found, cur = {}, '0'
  repeat
    local r = redis.call('ZSCAN', key, cur, 'MATCH', pattern, 'COUNT', 1000)
    cur = r[1]
    for k = 1, #r[2], 2 do found[#found + 1] = {r[2][k], tonumber(r[2][k + 1])} end
  until cur == '0'
  return found
end

-- the chunks a pause parked in the scheduled set go on the stream now
local function unpark()
  local head = 'chunk:' .. id .. ':'
  for _, m in ipairs(zscan(sz, glob(head) .. '*')) do
    local b, e = string.match(string.sub(m[1], #head + 1), '^(%d+):(%d+)$')
    if b and string.sub(m[1], 1, #head) == head then
      redis.call('ZREM', sz, m[1])
      redis.call('XADD', chunks, '*', 'c', id, 's', b, 'e', e)
    end
  end
end

-- a scheduled campaign starts: as take.lua does at its send_at (a
-- chunks-ahead campaign: its first chunks; next.lua adds the rest)
local function start()
  local t = redis.call('HMGET', ck, 'total', 'chunk_size', 'ahead')
  local total, size, ahead = tonumber(t[1]), tonumber(t[2]), tonumber(t[3])
  redis.call('ZREM', sz, 'start:' .. id)
  redis.call('HSET', ck, 'state', 'running', 'started_at', now)
  redis.call('ZADD', az, now, id)
  local n = math.floor((total + size - 1) / size)
  if ahead and ahead > 0 and ahead < n then n = ahead end
  for s = 0, n - 1 do
    redis.call('XADD', chunks, '*', 'c', id, 's', s * size, 'e', math.min((s + 1) * size, total))
  end
  if ahead and ahead > 0 then redis.call('HSET', ck, 'next_chunk', math.min(n * size, total)) end
end

-- A recipient's address on a channel, normalized as the daemon does it
-- (daemon/address.c), so that its record's field CHANNEL:ADDRESS is found.
-- nil when it cannot be told (the daemon would not have deferred it).
local kinds = {}
for k = 5, #ARGV - 1, 2 do kinds[ARGV[k]] = ARGV[k + 1] end
local function kind_of(ch)
  if kinds[ch] then return kinds[ch] end
  if ch == 'sms' or ch == 'whatsapp' or ch == 'phone' or ch == 'mms' then return 'phone' end
  if ch == 'email' or ch == 'mail' then return 'email' end
  return 'any'
end
local function normalize(kind, s)
  if type(s) ~= 'string' then return nil end
  s = string.match(s, '^%s*(.-)%s*$')
  if s == '' or #s >= 256 then return nil end
  if kind == 'phone' then
    local plus, i = false, 1
    if string.sub(s, 1, 1) == '+' then plus, i = true, 2 end
    local digits = {}
    for k = i, #s do
      local c = string.sub(s, k, k)
      if string.find(c, '^%d$') then
        digits[#digits + 1] = c
      elseif not string.find(c, '^[ %-%.%(%)]$') then
        return nil
      end
    end
    if #digits > 30 then return nil end
    local d = table.concat(digits)
    if not plus and #d > 2 and string.sub(d, 1, 2) == '00' then d, plus = string.sub(d, 3), true end
    if not plus or #d < 8 or #d > 15 or string.sub(d, 1, 1) == '0' then return nil end
    return '+' .. d
  elseif kind == 'email' then
    local l, dom = string.match(s, '^([^@]+)@([^@]+)$')
    if not l then return nil end
    return l .. '@' .. string.lower(dom)
  end
  if string.find(s, '%c') then return nil end
  return s
end
local function address(raw, ch)
  local ok, r = pcall(cjson.decode, raw)
  if not ok or type(r) ~= 'table' then return nil end
  local to = r.to
  if type(to) == 'table' then to = to[ch] end
  return normalize(kind_of(ch), to)
end

-- Cancel: the campaign's members of the retry set (id|slot|channel-index)
-- end now, unless an instance holds them (a claim in flight, a member
-- taken and leased): those end through their owner.
local function cancel_waiting()
  local ok, spec = pcall(cjson.decode, redis.call('HGET', ck, 'spec') or '{}')
  local chs = ok and type(spec) == 'table' and type(spec.channels) == 'table' and spec.channels or {}
  local inc = {}
  local function count(name) inc[name] = (inc[name] or 0) + 1 end
  local head = id .. '|'
  for _, m in ipairs(zscan(rz, glob(head) .. '*')) do
    local member, due = m[1], m[2]
    local slot, ci = string.match(string.sub(member, #head + 1), '^(%d+)|(%d+)$')
    local ch = slot and string.sub(member, 1, #head) == head and chs[tonumber(ci) + 1]
    local raw = ch and redis.call('LINDEX', rk, slot)
    local addr = raw and address(raw, ch)
    if addr then
      local field = ch .. ':' .. addr
      local v = redis.call('HGET', mk, field)
      local r = v and cjson.decode(v)
      if r and tostring(r.slot) ~= slot then
        -- the address of an earlier recipient: a duplicate, as claim.lua
        -- counts it
        if redis.call('HSETNX', mk, 'dup:' .. slot, field) == 1 then
          count('suppressed')
          count('duplicates')
        end
        redis.call('ZREM', rz, member)
      elseif r and r.state == 'retry' then
        -- waiting for its next attempt (a taken one's claim answers done)
        r.state = 'cancelled'
        r.at = now
        redis.call('HSET', mk, field, cjson.encode(r))
        count('cancelled')
        redis.call('ZREM', rz, member)
      elseif r and (r.state == 'claimed' or (r.state == 'failed' and r.next)) then
        -- in an instance's hands: its owner records how it ends
      elseif r then
        redis.call('ZREM', rz, member) -- ended already: nothing to bring back
      elseif due > now + lease then
        -- never claimed (deferred for quiet hours) and not taken by an
        -- instance (a taken member is leased until now + lease at most)
        redis.call('HSET', mk, field,
          cjson.encode({state = 'cancelled', channel = ch, slot = slot, at = now}))
        count('cancelled')
        redis.call('ZREM', rz, member)
      end
    end
  end
  for k, v in pairs(inc) do redis.call('HINCRBY', ck, k, v) end
end

if action == 'pause' then
  if st == 'running' or st == 'scheduled' then
    redis.call('HSET', ck, 'state', 'paused', 'paused_from', st, 'paused_at', now)
    return {'ok', 'paused'}
  end
  if st == 'paused' then return {'ok', 'paused'} end
elseif action == 'resume' then
  if st == 'paused' then
    local from = h[4] or 'running'
    if from == 'scheduled' and not h[3] then
      -- paused before its start: take.lua consumed a start entry that came
      -- due meanwhile without starting it; start now if send_at has passed
      local due = redis.call('ZSCORE', sz, 'start:' .. id)
      if not due or tonumber(due) <= now then
        start()
        return {'ok', 'running'}
      end
      redis.call('HSET', ck, 'state', 'scheduled')
      return {'ok', 'scheduled'}
    end
    redis.call('HSET', ck, 'state', 'running')
    -- running again: the sweep's index counts its idle time from now
    redis.call('ZADD', az, now, id)
    unpark()
    return {'ok', 'running'}
  end
  if st == 'running' or st == 'scheduled' then return {'ok', st} end
elseif action == 'cancel' then
  if st ~= 'cancelled' then redis.call('HSET', ck, 'state', 'cancelled', 'cancelled_at', now) end
  if not h[3] then
    -- never started (scheduled, or paused before its start): nothing was
    -- claimed, so every recipient ends cancelled now
    redis.call('ZREM', sz, 'start:' .. id)
    local total = tonumber(redis.call('HGET', ck, 'total')) or 0
    redis.call('HSET', ck, 'cancelled', total, 'finished_at', now)
    redis.call('ZREM', az, id)
    -- a conversation message (a message job) cancelled before its start
    -- ends failed (cancelled) in its conversation's log and events
    local cv = redis.call('HGET', ck, 'type') == 'message' and redis.call('GET', prefix .. 'conv:of:' .. id)
    if cv then
      local c = redis.call('HMGET', prefix .. 'conv:' .. cv, 'channel', 'contact')
      if c[1] and c[2] then conv_status(prefix, cv, id, 'failed', c[1], c[2], nil, 'cancelled', now) end
    end
    return {'ok', 'cancelled'}
  end
  -- recipients whose chunk was never added (a chunks-ahead campaign) end
  -- cancelled now; the chunks in the stream cancel the rest as they come
  local c = redis.call('HMGET', ck, 'next_chunk', 'total')
  local nx, total = tonumber(c[1]), tonumber(c[2])
  if nx and total and nx < total then
    redis.call('HINCRBY', ck, 'cancelled', total - nx)
    redis.call('HSET', ck, 'next_chunk', total)
  end
  -- parked chunks are claimed (and end cancelled) at once
  unpark()
  cancel_waiting()
  finish_if_done(prefix, ck, id, 'cancelled', now)
  return {'ok', 'cancelled'}
end
return {'error', 'cannot ' .. action .. ' a campaign that is ' .. st}
