-- Record the outcomes of finished sends, for many recipients (of possibly
-- many campaigns) in one round trip: the message record, the campaign
-- counters, the provider-id index, the contact's last campaign, retries.
-- Transitions only move forward; replaying a batch changes nothing.
-- ARGV: prefix, now_ms, pmid_ttl_s, then records of two kinds:
--   a run of first attempts sent by one owner (the common case):
--     'S', campaign, channel, owner, count, then count triples of
--     address, slot, provider_id
--   any other outcome, one at a time:
--     kind (sent|failed|retry|defer|unc), campaign, channel, address, slot,
--     final (1/0), provider_id, reason, retry_due_ms (unc: the unix ms
--     the request went on the wire; sent: when > 0, the unix ms by which a
--     delivered/read status must come, fallback_after_s), retry_member
--     (sent with a due time: {id}|{slot}|{channel index}, the watch member's
--     start; omni:watch gets it with "|channel:address" appended)
--   'K', connector: the connector instance that sent the records after it
--     (until the next 'K'), kept in the provider-id index as "k" so inbound
--     events only match messages their own connector sent; not an outcome
--   'G', segments: the SMS segments of each message sent in the records
--     after it (until the next 'G'; 0 at the start), summed on the
--     campaign as `segments` for each sent recorded; not an outcome
--   'A', channel, id, address: the provider answered a send to address
--     under another id for the recipient (WhatsApp's wa_id); alias:{channel}:{id}
--     is set to address, so inbound events from id count for it (inbound.lua);
--     not an outcome
-- A record that no longer exists (Redis lost the write: a restart from an
-- older snapshot, a failover) is written from the outcome: the caller knows
-- what it sent. Only a campaign that no longer exists drops an outcome.
-- Returns one string with a character per outcome, in order: o (recorded)
-- or s (stale: the record had moved on; nothing written).
-- The records are read with one HMGET and written with one HSET per
-- campaign in the batch; the provider-id index and the contact take one
-- command per message sent.
local prefix, now, ttl_s = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now_s = ARGV[2]

-- (q, sliced and finish_if_done are the prelude's: lib/prelude.lua)

-- pass 1: every record the batch touches, read up front with one HMGET
-- per message hash; an outcome remembers its hash and field position
local books, order = {}, {}
local function book(c)
  local b = books[c]
  if not b then
    local h = redis.call('HMGET', prefix .. 'campaign:' .. c, 'state', 'type')
    local st = h[1]
    b = {mk = prefix .. 'msg:' .. c, fields = {}, vals = nil, dirty = {}, dorder = {}, inc = {},
      exists = st ~= false, state = st}
    if h[2] == 'message' then
      -- a message job (proactive or a conversation's): not a campaign, never
      -- the contact's last_campaign; its conversation (conv:of:) follows it
      b.msg = true
      b.conv = redis.call('GET', prefix .. 'conv:of:' .. c) or ''
    end
    books[c] = b
    order[#order + 1] = c
  end
  return b
end
local i, n = 4, 0
while i <= #ARGV do
  if ARGV[i] == 'S' then
    local b, pre, k = book(ARGV[i + 1]), ARGV[i + 2] .. ':', tonumber(ARGV[i + 4])
    local f = b.fields
    for j = i + 5, i + 2 + 3 * k, 3 do f[#f + 1] = pre .. ARGV[j] end
    n = n + k
    i = i + 5 + 3 * k
  elseif ARGV[i] == 'K' or ARGV[i] == 'G' then
    i = i + 2
  elseif ARGV[i] == 'A' then
    i = i + 4
  else
    if ARGV[i] ~= 'defer' then
      local f = book(ARGV[i + 1]).fields
      f[#f + 1] = ARGV[i + 2] .. ':' .. ARGV[i + 3]
    end
    n = n + 1
    i = i + 10
  end
end
for _, c in ipairs(order) do
  local b = books[c]
  b.vals = sliced('HMGET', b.mk, b.fields, 1000)
  b.at = 0
end

-- the current record of the next field of b: written earlier in this
-- batch, else as read
local function take(b)
  b.at = b.at + 1
  local f = b.fields[b.at]
  return f, b.dirty[f] or b.vals[b.at]
end
local function put(b, f, v)
  if not b.dirty[f] then b.dorder[#b.dorder + 1] = f end
  b.dirty[f] = v
end
local function count(b, name, k) b.inc[name] = (b.inc[name] or 0) + (k or 1) end

local pmid_pre, contact_pre = prefix .. 'pmid:', prefix .. 'contact:'
local out = {}
-- the sending connector's part of a provider-id index value ('K')
local kj = ''
-- the segments of each message sent in the records that follow ('G')
local seg = 0
-- any outcome, decoded: the full rules
local function general(c, ch, addr, slot, kind, final, pid, reason, due, member)
  if kind == 'defer' then
    local b = book(c)
    if b.state == 'cancelled' then
      -- cancelled meanwhile: it ends now instead of waiting for its window
      if redis.call('HSETNX', b.mk, ch .. ':' .. addr,
          cjson.encode({state = 'cancelled', channel = ch, slot = slot, at = now})) == 1 then
        count(b, 'cancelled')
      end
      redis.call('ZREM', prefix .. 'retry', member)
      return 'o'
    end
    -- not claimed yet (quiet hours): wait in the retry set until due
    redis.call('ZADD', prefix .. 'retry', due, member)
    return 'o'
  end
  local b = book(c)
  local f, v = take(b)
  if not b.exists then return 's' end
  local r = v and cjson.decode(v)
  if r and r.slot ~= slot then return 's' end
  if r and r.state ~= 'claimed' and r.state ~= 'uncertain' then return 's' end
  if r and r.state == 'uncertain' and (kind == 'retry' or kind == 'unc') then
    if kind == 'unc' and not r.wire_at and tonumber(due) > 0 then
      -- declared uncertain by another's claim first: keep what the owner saw
      r.reason, r.wire_at = reason, tonumber(due)
      put(b, f, cjson.encode(r))
    end
    return 's'
  end
  if not r then
    r = {channel = ch, slot = slot, attempts = 0}
  elseif r.state == 'uncertain' and (kind == 'sent' or final) then
    -- a late answer for a claim already declared uncertain
    count(b, 'uncertain_resolved')
    count(b, 'uncertain', -1)
  end
  r.at = now
  if r.owner then r.by = r.owner end
  r.owner = nil
  r.lease = nil
  if kind == 'unc' then
    -- the request may have reached the provider and no answer came
    r.state = 'uncertain'
    r.reason = reason
    if tonumber(due) > 0 then r.wire_at = tonumber(due) end
    count(b, 'uncertain')
  elseif kind == 'sent' then
    r.state = 'sent'
    r.provider_id = pid
    if reason ~= '' then r.reason = reason end
    count(b, 'sent')
    count(b, 'sent:' .. ch)
    local wd = tonumber(due)
    local wci = wd and wd > 0 and r.w == nil and string.match(member, '|(%d+)$')
    if wci then
      -- fallback_after_s: watched until a delivered/read status (watch.lua)
      r.w = tonumber(wci)
      redis.call('ZADD', prefix .. 'watch', wd, member .. '|' .. f)
      count(b, 'awaiting')
    end
    if seg > 0 then count(b, 'segments', seg) end
    local pm = pid ~= '' and pmid_pre .. pid
    if pm then
      redis.call('SET', pm, '{"c":' .. q(c) .. ',"ch":' .. q(ch) .. kj ..
        (b.msg and ',"v":' .. q(b.conv) or '') .. ',"a":' .. q(addr) .. '}', 'EX', ttl_s)
    end
    if not b.msg then
      redis.call('HSET', contact_pre .. ch .. ':' .. addr, 'last_campaign', c, 'last_sent', now_s)
    end
  elseif kind == 'failed' then
    r.state = 'failed'
    r.error = reason
    count(b, 'failed:' .. ch)
    -- by reason too, with every per-channel failure (docs/delivery.md)
    count(b, reason_counter(reason))
    if final then
      count(b, 'failed')
    else
      r.next = true
    end
    -- suppressed on this channel: the contact said stop (final), or the
    -- number or mailbox does not exist (unreachable_number, invalid_mailbox:
    -- it may fall back)
    if reason == 'opted_out' or reason == 'unreachable_number' or reason == 'invalid_mailbox' then
      redis.call('SADD', prefix .. 'suppress:' .. ch, addr)
    end
    -- an opt-out reaches the address's contact (omni:contact_ids:{channel},
    -- written by claim.lua), suppressed on every channel with optout_scope =
    -- contact
    if reason == 'opted_out' then
      local cid = redis.call('HGET', prefix .. 'contact_ids:' .. ch, addr)
      if cid then redis.call('SADD', prefix .. 'suppress_contacts', cid) end
    end
  elseif kind == 'retry' and b.state == 'cancelled' then
    -- no retry for a cancelled campaign: it ends now
    r.state = 'cancelled'
    r.error = reason
    count(b, 'cancelled')
    redis.call('ZREM', prefix .. 'retry', member)
  elseif kind == 'retry' then
    r.state = 'retry'
    r.error = reason
    r.due = tonumber(due)
    redis.call('ZADD', prefix .. 'retry', due, member)
  end
  if r.state ~= 'retry' and member ~= '' then
    redis.call('ZREM', prefix .. 'retry', member)
  end
  put(b, f, cjson.encode(r))
  return 'o'
end

-- pass 2: the transitions, in order
i = 4
while i <= #ARGV do
  if ARGV[i] == 'S' then
    -- the fresh claim claim.lua wrote (its prefix up to the lease) becomes
    -- the sent record without decoding or encoding
    local c, ch, owner, k = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    local b = book(c)
    local cj, oj = q(ch), q(owner)
    local claimed = '{"state":"claimed","channel":' .. cj .. ',"slot":"'
    local claimed_tail = '","owner":' .. oj .. ',"attempts":1,"lease":'
    local sent = '{"state":"sent","channel":' .. cj .. ',"slot":"'
    local sent_tail = '","attempts":1,"at":' .. now_s .. ',"by":' .. oj .. ',"provider_id":'
    local pm_head = '{"c":' .. q(c) .. ',"ch":' .. cj .. kj ..
        (b.msg and ',"v":' .. q(b.conv) or '') .. ',"a":'
    local attr = not b.msg
    local ck = contact_pre .. ch .. ':'
    local ok = 0
    for j = i + 5, i + 2 + 3 * k, 3 do
      local addr, slot, pid = ARGV[j], ARGV[j + 1], ARGV[j + 2]
      local f, v = take(b)
      if v and string.find(v, claimed .. slot .. claimed_tail, 1, true) == 1 then
        put(b, f, sent .. slot .. sent_tail .. q(pid) .. '}')
        if pid ~= '' then
          redis.call('SET', pmid_pre .. pid, pm_head .. q(addr) .. '}', 'EX', ttl_s)
        end
        if attr then redis.call('HSET', ck .. addr, 'last_campaign', c, 'last_sent', now_s) end
        ok = ok + 1
        out[#out + 1] = 'o'
      else
        b.at = b.at - 1
        out[#out + 1] = general(c, ch, addr, slot, 'sent', true, pid, '', '', '')
      end
    end
    count(b, 'sent', ok)
    count(b, 'sent:' .. ch, ok)
    if seg > 0 then count(b, 'segments', seg * ok) end
    i = i + 5 + 3 * k
  elseif ARGV[i] == 'K' then
    kj = ARGV[i + 1] ~= '' and ',"k":' .. q(ARGV[i + 1]) or ''
    i = i + 2
  elseif ARGV[i] == 'G' then
    seg = tonumber(ARGV[i + 1]) or 0
    i = i + 2
  elseif ARGV[i] == 'A' then
    -- no expiry, like the suppression set it feeds: a STOP may come months
    -- later; each send answered under the id writes it again (the latest wins)
    if ARGV[i + 2] ~= '' and ARGV[i + 2] ~= ARGV[i + 3] then
      redis.call('SET', prefix .. 'alias:' .. ARGV[i + 1] .. ':' .. ARGV[i + 2], ARGV[i + 3])
    end
    i = i + 4
  else
    out[#out + 1] = general(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i],
        ARGV[i + 5] == '1', ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
    i = i + 10
  end
end

for _, c in ipairs(order) do
  local b = books[c]
  if #b.dorder > 0 then
    local args = {}
    for k, f in ipairs(b.dorder) do
      args[2 * k - 1] = f
      args[2 * k] = b.dirty[f]
    end
    sliced('HSET', b.mk, args, 1000)
  end
  local t = b.inc
  if next(t) then
    local ck = prefix .. 'campaign:' .. c
    redis.call('ZADD', prefix .. 'active', now, c)
    for k, v in pairs(t) do
      if v ~= 0 then redis.call('HINCRBY', ck, k, v) end
    end
    local s = redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain',
        'cancelled', 'state', 'type')
    if b.msg and b.conv ~= '' then
      -- a proactive or conversation message: its conversation's log and
      -- events follow it (sent with the provider id; failed, final, with
      -- the reason); only message jobs come here, never a broadcast's
      for _, f in ipairs(b.dorder) do
        local r = cjson.decode(b.dirty[f])
        local addr = string.sub(f, #r.channel + 2)
        if r.state == 'sent' then
          conv_status(prefix, b.conv, c, 'sent', r.channel, addr, r.provider_id, nil, now)
        elseif r.state == 'failed' and not r.next then
          conv_status(prefix, b.conv, c, 'failed', r.channel, addr, nil, r.error, now)
        end
      end
    end
    -- not running (paused, cancelled, done): out of the active index too
    if not finish_if_done(prefix, ck, c, s[7], now, s) and s[7] ~= 'running' then
      redis.call('ZREM', prefix .. 'active', c)
    end
  end
end
return table.concat(out)
