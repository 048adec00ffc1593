-- The consistency sweep of one running campaign: after Redis lost writes (a
-- restart from an older snapshot, an async replica promoted) or a process
-- died between two steps, a recipient can be left with nothing that will
-- ever finish it (no record, no chunk, no retry) and the campaign stays
-- running forever. Once no chunk of the campaign waits anywhere, every
-- recipient is put back on a path:
--   claimed, lease (+ grace) passed   -> uncertain, reason owner_lost
--   retry without a retry entry       -> retry entry, due now
--   failed with next, next channel untouched -> retry entry on the next
--                                        channel, due now (claimed afresh)
--   sent and moved on (fell), next channel untouched -> the same
--   sent and watched (w), no omni:watch entry -> the entry again
--   no record on any channel, no retry entry -> chunks again (the claim
--                                        guard claims each at most once)
-- then the campaign finishes if its counters say so. A campaign with
-- nothing to repair that only waits for retries due later is looked at
-- again once the first of them is due (its score in the active index).
-- The message hash is read in pages, up to a budget of records per call
-- (so that one call never holds Redis long, whatever the campaign's size);
-- a scan that needs more calls keeps its cursor, what it saw and what it
-- did in {prefix}sweep:{id} (a hash) and {prefix}sweep:{id}:seen (a bitmap:
-- bit s = slot s has a record or a dup: field; bit total + s*channels + c =
-- slot s has a record on channel c), both expiring if it is abandoned.
-- KEYS[1] campaign hash   KEYS[2] message hash   KEYS[3] retry zset
-- KEYS[4] scheduled zset  KEYS[5] chunks stream  KEYS[6] active zset
-- ARGV: prefix, now_ms, campaign id, consumer group, lease grace (ms),
--   [records per call, default 10000]
-- Returns one string:
--   'skip:REASON': missing, paused, ... (not running), pending (a chunk of
--     the campaign still waits), busy (too many chunks to look through)
--   'more scanned=N': the scan goes on; call again
--   'swept requeued=N uncertain=M retries=K', with ' done' when the
--     campaign finished (the counts are for the whole scan)
local ck, mk, rz, sz, xs, az = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, now, id, group = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local grace, budget = tonumber(ARGV[5]) or 0, tonumber(ARGV[6]) or 10000
if budget < 1 then budget = 1 end
local stk = prefix .. 'sweep:' .. id
local seenk = stk .. ':seen'
local STATE_TTL = 600
-- how many pending / undelivered stream entries and scheduled-set pages one
-- call looks through before it gives up for this round
local BOUND = 1000

local c = redis.call('HMGET', ck, 'state', 'total', 'chunk_size', 'spec')
local state = c[1]
if state ~= 'running' then
  -- not running: not active (resume and a scheduled start add it again)
  redis.call('DEL', stk, seenk)
  redis.call('ZREM', az, id)
  return 'skip:' .. (state or 'missing')
end
-- looked at now: the next round comes to it after another idle period, and
-- the campaigns behind it in the index get their turn
local function later(why)
  redis.call('ZADD', az, 'XX', now, id)
  return why
end
local function abandon(why)
  redis.call('DEL', stk, seenk)
  return later(why)
end

-- ---- is any chunk of this campaign still waiting?

-- a stream entry's campaign field
local function of(entry)
  local f = entry[2]
  if type(f) ~= 'table' then return nil end
  for i = 1, #f - 1, 2 do
    if f[i] == 'c' then return f[i + 1] end
  end
  return nil
end

if redis.call('ZSCORE', sz, 'start:' .. id) then return abandon('skip:pending') end
-- parked chunks 'chunk:{id}:{s}:{e}': glob characters in the id escaped;
-- the id is compared exactly (another campaign's id may extend this one)
local pat = 'chunk:' .. string.gsub(id, '([%*%?%[%]\\])', '\\%1') .. ':*'
local cursor, pages = '0', 0
repeat
  local res = redis.call('ZSCAN', sz, cursor, 'MATCH', pat, 'COUNT', 1000)
  cursor = res[1]
  local kv = res[2]
  for i = 1, #kv, 2 do
    if string.match(kv[i], '^chunk:(.*):%d+:%d+$') == id then return abandon('skip:pending') end
  end
  pages = pages + 1
  if pages > BOUND and cursor ~= '0' then return abandon('skip:busy') end
until cursor == '0'

if redis.call('TYPE', xs)['ok'] == 'stream' then
  local last, pending = '0-0', 0
  local groups = redis.pcall('XINFO', 'GROUPS', xs)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local name, l, p
      for i = 1, #g - 1, 2 do
        if g[i] == 'name' then name = g[i + 1]
        elseif g[i] == 'last-delivered-id' then l = g[i + 1]
        elseif g[i] == 'pending' then p = g[i + 1] end
      end
      if name == group then last, pending = l or '0-0', tonumber(p) or 0 end
    end
  end
  -- delivered, not acknowledged
  if pending > BOUND then return abandon('skip:busy') end
  if pending > 0 then
    for _, p in ipairs(redis.call('XPENDING', xs, group, '-', '+', BOUND)) do
      local e = redis.call('XRANGE', xs, p[1], p[1])[1]
      if e and of(e) == id then return abandon('skip:pending') end
    end
  end
  -- not delivered yet
  local fresh = redis.call('XRANGE', xs, '(' .. last, '+', 'COUNT', BOUND + 1)
  if #fresh > BOUND then return abandon('skip:busy') end
  for _, e in ipairs(fresh) do
    if of(e) == id then return abandon('skip:pending') end
  end
end

-- ---- the records, a page at a time

local total = tonumber(c[2]) or 0
local size = tonumber(c[3]) or 0
if size < 1 then size = 100 end
local chans, fallback_after_s = {}, nil
if c[4] then
  local ok, spec = pcall(cjson.decode, c[4])
  if ok and type(spec) == 'table' and type(spec.channels) == 'table' then chans = spec.channels end
  if ok and type(spec) == 'table' then fallback_after_s = spec.fallback_after_s end
end
local index = {}
for i, ch in ipairs(chans) do index[ch] = i - 1 end
local nch = #chans

local st = redis.call('HMGET', stk, 'cursor', 'uncertain', 'retries', 'scanned', 'wait')
cursor = st[1] or '0'
local uncertain, retries, scanned = tonumber(st[2]) or 0, tonumber(st[3]) or 0, tonumber(st[4]) or 0
-- the earliest due time of the campaign's retry entries seen waiting
local wait = tonumber(st[5])
local function waiting(due)
  due = tonumber(due)
  if due and (not wait or due < wait) then wait = due end
end
if not st[1] then redis.call('DEL', seenk) end

local function member(slot, ci) return id .. '|' .. slot .. '|' .. ci end
local sets, nsets = {}, 0 -- BITFIELD arguments of the bits to set
local function bits()
  if nsets > 0 then redis.call('BITFIELD', seenk, unpack(sets, 1, nsets)) end
  nsets = 0
end
local function setbit(off)
  sets[nsets + 1], sets[nsets + 2], sets[nsets + 3], sets[nsets + 4] = 'SET', 'u1', off, 1
  nsets = nsets + 4
  if nsets >= 4000 then bits() end
end
local function mark(slot, ci)
  if slot < 0 or slot >= total then return end
  setbit(slot)
  if ci then setbit(total + slot * nch + ci) end
end

local count, inc = 0, 0
repeat
  local res = redis.call('HSCAN', mk, cursor, 'COUNT', math.min(1000, budget))
  cursor = res[1]
  local kv = res[2]
  count = count + #kv / 2
  for i = 1, #kv, 2 do
    local field, raw = kv[i], kv[i + 1]
    if string.sub(field, 1, 4) == 'dup:' then
      local s = tonumber(string.sub(field, 5))
      if s then mark(s) end
    else
      -- records written by claim.lua and outcome.lua's run path start with
      -- state, channel and slot: read without decoding
      local rs, ch, s = string.match(raw, '^{"state":"(%a+)","channel":"([^"\\]*)","slot":"(%d+)"')
      local r
      if not rs or rs == 'claimed' or rs == 'failed' or (rs == 'sent' and
          (string.find(raw, '"fell":', 1, true) or string.find(raw, '"w":', 1, true))) then
        local ok, d = pcall(cjson.decode, raw)
        if ok and type(d) == 'table' then
          r = d
          rs, ch, s = d.state, d.channel, d.slot
        end
      end
      local slot = tonumber(s)
      if slot then
        local ci = index[ch]
        mark(slot, ci)
        if rs == 'claimed' and r then
          if (tonumber(r.lease) or 0) + grace < now then
            -- the owner is gone, or its outcome was lost: the transfer may
            -- have happened, so the recipient is not sent again
            r.state = 'uncertain'
            r.reason = 'owner_lost'
            r.claimed_at = r.at
            r.at = now
            redis.call('HSET', mk, field, cjson.encode(r))
            inc = inc + 1
          end
        elseif rs == 'retry' and ci then
          local due = redis.call('ZSCORE', rz, member(s, ci))
          if due then
            waiting(due)
          else
            redis.call('ZADD', rz, now, member(s, ci))
            retries = retries + 1
          end
        elseif rs == 'failed' and r and r.next == true and ci and ci + 1 < nch then
          -- decided once every record was seen: remembered until then
          redis.call('HSET', stk, 'n:' .. slot, ci + 1)
        elseif rs == 'sent' and r and r.fell and ci and ci + 1 < nch then
          -- moved on after sending (a failed status, fallback_after_s): the
          -- same as a failure with next
          redis.call('HSET', stk, 'n:' .. slot, ci + 1)
        elseif rs == 'sent' and r and r.w ~= nil then
          -- watched for its delivery: its watch entry lost, one is added,
          -- due when the original was (or now)
          local wm = id .. '|' .. s .. '|' .. tostring(r.w) .. '|' .. field
          if not redis.call('ZSCORE', prefix .. 'watch', wm) then
            local due = (tonumber(r.at) or 0) + (tonumber(fallback_after_s) or 0) * 1000
            redis.call('ZADD', prefix .. 'watch', math.max(now, due), wm)
          end
        end
      end
    end
  end
until cursor == '0' or count >= budget
bits()
if inc > 0 then redis.call('HINCRBY', ck, 'uncertain', inc) end
uncertain, scanned = uncertain + inc, scanned + count

if cursor ~= '0' then
  redis.call('HSET', stk, 'cursor', cursor, 'uncertain', uncertain, 'retries', retries,
    'scanned', scanned)
  if wait then redis.call('HSET', stk, 'wait', wait) end
  redis.call('EXPIRE', stk, STATE_TTL)
  redis.call('EXPIRE', seenk, STATE_TTL)
  return later(string.format('more scanned=%d', scanned))
end

-- ---- every record seen

-- a failure that should go on to the next channel, with no record there
-- (the process died before claiming it): a retry entry for that channel
local kv = redis.call('HGETALL', stk)
for i = 1, #kv, 2 do
  local s = string.match(kv[i], '^n:(%d+)$')
  if s then
    local ci = tonumber(kv[i + 1])
    if redis.call('GETBIT', seenk, total + tonumber(s) * nch + ci) == 0 then
      local due = redis.call('ZSCORE', rz, member(s, ci))
      if due then
        waiting(due)
      else
        redis.call('ZADD', rz, now, member(s, ci))
        retries = retries + 1
      end
    end
  end
end

-- slots with no record anywhere: unless a retry entry waits for them (quiet
-- hours defer before any claim), they were never claimed; emitted again as
-- chunks of consecutive slots, chunk_size at most
local requeued = 0
local missing = {}
local run_first, run_last = nil, nil
local function emit()
  if run_first then
    redis.call('XADD', xs, '*', 'c', id, 's', run_first, 'e', run_last + 1)
    requeued = requeued + (run_last + 1 - run_first)
    run_first = nil
  end
end
local function flush()
  if #missing == 0 then return end
  local found = {}
  if nch > 0 then
    local ms = {}
    for _, s in ipairs(missing) do
      for ci = 0, nch - 1 do ms[#ms + 1] = member(s, ci) end
    end
    for b = 1, #ms, 1000 do
      local part = redis.call('ZMSCORE', rz, unpack(ms, b, math.min(b + 999, #ms)))
      for j = 1, #part do
        if part[j] then
          found[math.floor((b + j - 2) / nch) + 1] = true
          waiting(part[j])
        end
      end
    end
  end
  for j, s in ipairs(missing) do
    if not found[j] then
      if run_first and s == run_last + 1 and s - run_first < size then
        run_last = s
      else
        emit()
        run_first, run_last = s, s
      end
    end
  end
  missing = {}
end
-- the bitmap read 8 KiB at a time; a byte of 255 is 8 slots seen
local nbytes = math.floor((total + 7) / 8)
for b0 = 0, nbytes - 1, 8192 do
  local part = redis.call('GETRANGE', seenk, b0, math.min(b0 + 8191, nbytes - 1))
  for j = 0, math.min(8191, nbytes - 1 - b0) do
    local byte = string.byte(part, j + 1) or 0
    if byte ~= 255 then
      for k = 0, 7 do
        local s = (b0 + j) * 8 + k
        if s < total and bit.band(byte, bit.rshift(128, k)) == 0 then
          missing[#missing + 1] = s
        end
      end
      if #missing >= 4096 then flush() end
    end
  end
end
flush()
emit()
redis.call('DEL', stk, seenk)
-- a chunks-ahead campaign whose chain of chunks broke (lost writes): what
-- was never added is added now, so next.lua adds nothing more
if requeued > 0 and redis.call('HEXISTS', ck, 'next_chunk') == 1 then
  redis.call('HSET', ck, 'next_chunk', total)
end

local out = string.format('swept requeued=%d uncertain=%d retries=%d', requeued, uncertain, retries)
if requeued == 0 and retries == 0 then
  if finish_if_done(prefix, ck, id, 'running', now) then return out .. ' done' end
  -- nothing to repair, only retries waiting (a long Retry-After, quiet
  -- hours): the next look once the first of them is due and idle since
  if wait and wait > now then
    redis.call('ZADD', az, 'XX', wait, id)
    return out
  end
end
return later(out)
