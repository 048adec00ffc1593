-- Record the outcomes of finished sends, for many recipients (of possibly
-- many campaigns) in one round trip: the message record, the campaign
-- counters, the provider-id index, the contact's last campaign, retries.
-- Transitions only move forward; replaying a batch changes nothing.
-- ARGV: prefix, now_ms, pmid_ttl_s, then per outcome 10 values:
--   campaign, channel, address, slot, kind (sent|failed|retry|defer), final (1/0),
--   provider_id, reason, retry_due_ms, retry_member
-- Returns one code per outcome: ok | stale
-- The records are read with one HMGET and written with one HSET per
-- campaign in the batch; the provider-id index and the contact take one
-- command per message sent.
local prefix, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local incs = {}

local function count(c, name)
  local t = incs[c]
  if not t then t = {}; incs[c] = t end
  t[name] = (t[name] or 0) + 1
end

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

-- every record the batch touches, read up front: per message hash, the
-- fields and then their values (false: none)
local books, order = {}, {}
for i = 4, #ARGV, 10 do
  if ARGV[i + 4] ~= 'defer' then
    local mk = prefix .. 'msg:' .. ARGV[i]
    local b = books[mk]
    if not b then
      b = {fields = {}, pos = {}, vals = nil, dirty = {}, dorder = {}}
      books[mk] = b
      order[#order + 1] = mk
    end
    local field = ARGV[i + 1] .. ':' .. ARGV[i + 2]
    if not b.pos[field] then
      b.fields[#b.fields + 1] = field
      b.pos[field] = #b.fields
    end
  end
end
for _, mk in ipairs(order) do
  local b = books[mk]
  b.vals = sliced('HMGET', mk, b.fields, 1000)
end
local function get(mk, field)
  local b = books[mk]
  local d = b.dirty[field]
  if d then return cjson.decode(d) end
  local v = b.vals[b.pos[field]]
  if v then return cjson.decode(v) end
  return nil
end
local function set_raw(mk, field, v)
  local b = books[mk]
  if not b.dirty[field] then b.dorder[#b.dorder + 1] = field end
  b.dirty[field] = v
end
local function set(mk, field, r) set_raw(mk, field, cjson.encode(r)) end
local function raw(mk, field)
  local b = books[mk]
  return b.dirty[field] or b.vals[b.pos[field]]
end
-- a JSON string: as is when nothing needs escaping, else through cjson
local function q(s)
  if not string.find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return cjson.encode(s)
end
-- the record claim.lua writes for a fresh claim, field by field
local CLAIMED = '^{"state":"claimed","channel":("[^"\\]*"),"slot":"(%d+)","owner":("[^"\\]*"),' ..
    '"lease":%d+,"attempts":(%d+),"at":%d+}$'
local now_s, ttl_s = ARGV[2], ARGV[3]
local function sent_elsewhere(c, ch, addr, pid)
  if pid ~= '' then
    redis.call('SET', prefix .. 'pmid:' .. pid, '{"c":' .. q(c) .. ',"ch":' .. q(ch) .. ',"a":' ..
        q(addr) .. '}', 'EX', ttl_s)
  end
  redis.call('HSET', prefix .. 'contact:' .. ch .. ':' .. addr, 'last_campaign', c, 'last_sent',
      now_s)
end

for i = 4, #ARGV, 10 do
  local c, ch, addr, slot, kind, final = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
      ARGV[i + 4], ARGV[i + 5] == '1'
  local pid, reason, due, member = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  local mk = prefix .. 'msg:' .. c
  local field = ch .. ':' .. addr
  local r = nil
  local code = 'ok'
  -- the common case, a fresh claim now sent, without decoding or encoding
  local cj, s, ow, att
  if kind == 'sent' and member == '' then
    local v = raw(mk, field)
    if v then cj, s, ow, att = string.match(v, CLAIMED) end
  end
  if cj and s == slot then
    set_raw(mk, field, '{"state":"sent","channel":' .. cj .. ',"slot":"' .. s .. '","attempts":' ..
        att .. ',"at":' .. now_s .. ',"by":' .. ow .. ',"provider_id":' .. q(pid) .. '}')
    count(c, 'sent')
    sent_elsewhere(c, ch, addr, pid)
    kind = 'done'
  elseif kind ~= 'defer' then
    r = get(mk, field)
  end
  if kind == 'done' then
    -- recorded above
  elseif kind == 'defer' then
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
      sent_elsewhere(c, ch, addr, pid)
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
    set(mk, field, r)
  end
  out[#out + 1] = code
end

for _, mk in ipairs(order) do
  local b = books[mk]
  if #b.dorder > 0 then
    local args = {}
    for k, f in ipairs(b.dorder) do
      args[2 * k - 1] = f
      args[2 * k] = b.dirty[f]
    end
    sliced('HSET', mk, args, 1000)
  end
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
