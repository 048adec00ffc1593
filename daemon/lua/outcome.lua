-- Record the outcomes of finished sends, for many recipients (of possibly
-- many campaigns) in one round trip: the message record, the campaign
-- counters, the provider-id index, the contact's last campaign, retries.
-- Transitions only move forward; replaying a batch changes nothing.
-- ARGV: prefix, now_ms, pmid_ttl_s, then per outcome 10 values:
--   campaign, channel, address, slot, kind (sent|failed|retry|defer), final (1/0),
--   provider_id, reason, retry_due_ms, retry_member
-- Returns one code per outcome: ok | stale
local prefix, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local incs = {}

local function count(c, name)
  local t = incs[c]
  if not t then t = {}; incs[c] = t end
  t[name] = (t[name] or 0) + 1
end

for i = 4, #ARGV, 10 do
  local c, ch, addr, slot, kind, final = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
      ARGV[i + 4], ARGV[i + 5] == '1'
  local pid, reason, due, member = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  local mk = prefix .. 'msg:' .. c
  local field = ch .. ':' .. addr
  local raw = nil
  if kind ~= 'defer' then raw = redis.call('HGET', mk, field) end
  local r
  local code = 'ok'
  if raw then r = cjson.decode(raw) end
  if kind == 'defer' then
    -- not claimed yet (quiet hours): wait in the retry set until due
    redis.call('ZADD', prefix .. 'retry', due, member)
  elseif r and r.slot ~= slot then
    code = 'stale'
  elseif not r and kind ~= 'failed' then
    code = 'stale'
  elseif r and r.state ~= 'claimed' and r.state ~= 'uncertain' then
    code = 'stale'
  elseif r and r.state == 'uncertain' and kind == 'retry' then
    code = 'stale'
  else
    if not r then
      r = {channel = ch, slot = slot, attempts = 0}
    elseif r.state == 'uncertain' and (kind == 'sent' or final) then
      -- a late answer for a claim already declared uncertain
      count(c, 'uncertain_resolved')
      incs[c]['uncertain'] = (incs[c]['uncertain'] or 0) - 1
    end
    r.at = now
    if r.owner then r.by = r.owner end
    r.owner = nil
    r.lease = nil
    if kind == 'sent' then
      r.state = 'sent'
      r.provider_id = pid
      count(c, 'sent')
      if pid ~= '' then
        redis.call('SET', prefix .. 'pmid:' .. pid, cjson.encode({c = c, ch = ch, a = addr}), 'EX', ttl)
      end
      redis.call('HSET', prefix .. 'contact:' .. ch .. ':' .. addr, 'last_campaign', c, 'last_sent', now)
    elseif kind == 'failed' then
      r.state = 'failed'
      r.error = reason
      if final then
        count(c, 'failed')
        if reason == 'opted_out' then
          redis.call('SADD', prefix .. 'suppress:' .. ch, addr)
        end
      else
        r.next = true
      end
    elseif kind == 'retry' then
      r.state = 'retry'
      r.error = reason
      r.due = tonumber(due)
      redis.call('ZADD', prefix .. 'retry', due, member)
    end
    if kind ~= 'retry' and member ~= '' then
      redis.call('ZREM', prefix .. 'retry', member)
    end
    redis.call('HSET', mk, field, cjson.encode(r))
  end
  out[#out + 1] = code
end

for c, t in pairs(incs) do
  local ck = prefix .. 'campaign:' .. c
  for k, v in pairs(t) do
    if v ~= 0 then redis.call('HINCRBY', ck, k, v) end
  end
  local s = redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain', 'cancelled', 'state', 'type')
  if s[8] == 'message' and (t['sent'] or 0) > 0 then
    -- a proactive message: its conversation gets the sent message
    local conv = redis.call('GET', prefix .. 'conv:of:' .. c)
    if conv then
      redis.call('XADD', prefix .. 'conv:' .. conv .. ':log', '*', 'dir', 'out', 'status', 'sent',
        'campaign', c, 'at', now)
      redis.call('XADD', prefix .. 'conversations', 'MAXLEN', '~', 1000000, '*', 'event',
        'message.sent', 'data', cjson.encode({type = 'message.sent', conversation_id = conv,
        campaign = c, at = now}))
    end
  end
  local sum = 0
  for j = 2, 6 do sum = sum + (tonumber(s[j]) or 0) end
  if s[1] and sum >= tonumber(s[1]) and (s[7] == 'running' or s[7] == 'cancelled') then
    if s[7] == 'running' then redis.call('HSET', ck, 'state', 'done') end
    redis.call('HSET', ck, 'finished_at', now)
    redis.call('EXPIRE', ck .. ':rcpt', 604800)
  end
end
return out
