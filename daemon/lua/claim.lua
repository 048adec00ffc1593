-- The duplicate guard: claim recipients of one campaign before their
-- transfer starts, in one round trip per batch, and check suppression in
-- the same step. A record once claimed is never claimed again by another
-- slot; a claim whose owner died ends as 'uncertain', never resent.
-- KEYS[1] campaign hash   KEYS[2] message hash (omni:msg:{id})
-- ARGV: prefix, now_ms, lease_ms, owner ("consumer/incarnation" of the
--   calling process), consumer, then per recipient 4 values:
--   channel, address, slot (recipient index), flags ('F' if this is the
--   recipient's last channel, 'R' if it is a due retry being taken)
-- Returns {campaign_state, code...}; codes per recipient:
--   go:N (send it; N = attempt number) | sup (suppressed) | done (already terminal) | next (failed
--   on this channel earlier, try the next) | dup (same address earlier in
--   this campaign) | unc (lease expired: uncertain) | wait (another live
--   owner holds it) | cancelled
local ck, mk = KEYS[1], KEYS[2]
local prefix, now, lease, owner, consumer = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
    ARGV[4], ARGV[5]
local mine = consumer .. '/'

local state = redis.call('HGET', ck, 'state')
if not state then return {'missing'} end
if state == 'paused' or state == 'scheduled' then return {state} end

local out = {state}
local inc = {}
local function count(name, n) inc[name] = (inc[name] or 0) + (n or 1) end
local function put(field, rec) redis.call('HSET', mk, field, cjson.encode(rec)) end

for i = 6, #ARGV, 4 do
  local ch, addr, slot, flags = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local field = ch .. ':' .. addr
  local raw = redis.call('HGET', mk, field)
  local code
  if not raw then
    if state == 'cancelled' or state == 'done' then
      put(field, {state = 'cancelled', channel = ch, slot = slot, at = now})
      count('cancelled')
      code = 'cancelled'
    elseif redis.call('SISMEMBER', prefix .. 'suppress:' .. ch, addr) == 1 then
      put(field, {state = 'suppressed', channel = ch, slot = slot, at = now})
      count('suppressed')
      code = 'sup'
    else
      put(field, {state = 'claimed', channel = ch, slot = slot, owner = owner,
                  lease = now + lease, attempts = 1, at = now})
      code = 'go:1'
    end
  else
    local r = cjson.decode(raw)
    if r.slot ~= slot then
      -- the same address twice in one campaign: count it once as a duplicate
      if redis.call('HSETNX', mk, 'dup:' .. slot, field) == 1 then
        count('suppressed')
        count('duplicates')
      end
      code = 'dup'
    elseif r.state == 'claimed' then
      if r.owner == owner then
        -- our own claim whose answer was lost with the connection: we
        -- send only after a claim is answered, so it was never sent
        code = 'go:' .. (r.attempts or 1)
      elseif string.sub(r.owner, 1, #mine) == mine or tonumber(r.lease) <= now then
        -- a previous life of this consumer, or an owner gone silent
        r.state = 'uncertain'
        r.at = now
        put(field, r)
        count('uncertain')
        code = 'unc'
      else
        code = 'wait'
      end
    elseif r.state == 'retry' then
      if string.find(flags, 'R', 1, true) or state == 'cancelled' then
        -- a due retry taken from the retry set (final flag 'R')
        if state == 'cancelled' then
          r.state = 'cancelled'
          count('cancelled')
          code = 'cancelled'
        else
          r.state = 'claimed'
          r.owner = owner
          r.lease = now + lease
          r.attempts = (tonumber(r.attempts) or 1) + 1
          code = 'go:' .. r.attempts
        end
        r.at = now
        put(field, r)
      else
        code = 'done'
      end
    elseif r.state == 'failed' and r.next then
      code = 'next'
    else
      code = 'done'
    end
  end
  out[#out + 1] = code
end

if next(inc) then
  for k, v in pairs(inc) do
    redis.call('HINCRBY', ck, k, v)
  end
  local c = redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain', 'cancelled')
  local sum = 0
  for j = 2, 6 do sum = sum + (tonumber(c[j]) or 0) end
  if sum >= tonumber(c[1]) and (state == 'running' or state == 'cancelled') then
    if state == 'running' then redis.call('HSET', ck, 'state', 'done') end
    redis.call('HSET', ck, 'finished_at', now)
    redis.call('EXPIRE', ck .. ':rcpt', 604800)
  end
end
return out
