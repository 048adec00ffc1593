-- The duplicate guard: claim recipients of one campaign before their
-- transfer starts, in one round trip per batch, and check suppression in
-- the same step. A record once claimed is never claimed again by another
-- slot; a claim whose owner died ends as 'uncertain', never resent.
-- KEYS[1] campaign hash   KEYS[2] message hash (omni:msg:{id})
-- ARGV: prefix, now_ms, lease_ms, owner ("consumer/incarnation" of the
--   calling process), consumer, then runs of recipients that share a
--   channel and flags: channel, flags ('F' if this is the recipients' last
--   channel, 'R' if they are due retries being taken, 'X' if the caller
--   renews its own claim: the recipient waited past its lease unsent,
--   'W' if the caller needs the contact's last inbound time: a message job
--   on a channel with a customer service window, 'K' if each recipient
--   carries its contact_id: optout_scope = contact), count, then count pairs
--   of address, slot (recipient index), triples address, slot, contact_id
--   in a 'K' run
-- Returns one string: the campaign state, then one code per recipient,
-- separated by spaces:
--   go:N (send it; N = attempt number) | rs:N (send it: an operator's
--   resend-uncertain) | own:N (claimed by this very
--   owner already: only the caller's memory can tell a lost reply from a
--   second copy, so it decides) | sup (suppressed) | done (already terminal)
--   | next (failed on this channel earlier, try the next) | dup (same
--   address earlier in this campaign) | unc (lease expired: uncertain) |
--   wait (another live owner holds it) | cancelled
--   In a 'W' run, go, rs and own carry the contact's last_inbound (unix ms,
--   0 if never) as a third part: go:N:T
-- The whole batch costs a fixed number of commands: one HMGET of the
-- records, one SMISMEMBER per channel for the new ones, one HSET of every
-- record written; only duplicates take a command each (and in a 'W' run,
-- each recipient to send: one HGET of omni:contact:{channel}:{address}; in
-- a 'K' run, one SMISMEMBER of omni:suppress_contacts for the batch and one
-- HSET per channel of the fresh claims' contact_ids on
-- omni:contact_ids:{channel}, the link inbound.lua follows from an opt-out
-- to the contact).
local ck, mk = KEYS[1], KEYS[2]
local prefix, now, lease, owner, consumer = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
    ARGV[4], ARGV[5]
local mine = consumer .. '/'

local state = redis.call('HGET', ck, 'state')
if not state then return 'missing' end
local id = string.sub(ck, #prefix + 10) -- ck is prefix .. 'campaign:' .. id
local active = prefix .. "active"
if state == 'paused' or state == 'scheduled' then return state end

-- the conversation of a message job (proactive or a conversation's), ""
-- for any other campaign; read once, and only for a suppressed recipient
local conv_of = nil
local function conv_of_campaign()
  if conv_of == nil then
    conv_of = ''
    if redis.call('HGET', ck, 'type') == 'message' then
      conv_of = redis.call('GET', prefix .. 'conv:of:' .. id) or ''
    end
  end
  return conv_of
end

-- a conversation message cancelled before it went ends failed (cancelled)
-- in its conversation's log and events, not queued for ever
local function conv_cancelled(field, ch)
  local cv = conv_of_campaign()
  if cv ~= '' then
    conv_status(prefix, cv, id, 'failed', ch, string.sub(field, #ch + 2), nil, 'cancelled', now)
  end
end

-- the runs, unpacked: per recipient its channel, address, slot, flags
local chs, addrs, slots, flagss, fields = {}, {}, {}, {}, {}
local cids = {} -- 'K' runs: the recipient's contact_id, by index
local n, i = 0, 6
local any_w = false -- a 'W' run: only then is a recipient's flags looked at for it
local any_k = false
while i <= #ARGV do
  local ch, flags, k = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if string.find(flags, 'W', 1, true) then any_w = true end
  local kr = string.find(flags, 'K', 1, true) ~= nil
  if kr then any_k = true end
  local pre = ch .. ':'
  i = i + 3
  for _ = 1, k do
    n = n + 1
    chs[n], addrs[n], slots[n], flagss[n] = ch, ARGV[i], ARGV[i + 1], flags
    fields[n] = pre .. ARGV[i]
    if kr then
      cids[n] = ARGV[i + 2]
      i = i + 3
    else
      i = i + 2
    end
  end
end
if n < 1 then return state end
local raws = sliced('HMGET', mk, fields, 1000)

-- suppression of the addresses without a record, one command per channel
local suppressed = {}
if state ~= 'cancelled' and state ~= 'done' then
  local by_ch = {}
  for j = 1, n do
    if not raws[j] then
      local t = by_ch[chs[j]]
      if not t then t = {}; by_ch[chs[j]] = t end
      t[#t + 1] = addrs[j]
    end
  end
  for ch, list in pairs(by_ch) do
    local hit = sliced('SMISMEMBER', prefix .. 'suppress:' .. ch, list, 1000)
    for k = 1, #list do
      if hit[k] == 1 then suppressed[ch .. ':' .. list[k]] = true end
    end
  end
end
-- optout_scope = contact: a contact that opted out on any channel is
-- suppressed on every channel (one command for the batch)
local csup = {}
if any_k and state ~= 'cancelled' and state ~= 'done' then
  local list, at = {}, {}
  for j = 1, n do
    if cids[j] and not raws[j] and not suppressed[fields[j]] then
      list[#list + 1] = cids[j]
      at[#at + 1] = j
    end
  end
  if #list > 0 then
    local hit = sliced('SMISMEMBER', prefix .. 'suppress_contacts', list, 1000)
    for k = 1, #list do
      if hit[k] == 1 then csup[at[k]] = true end
    end
  end
end

local out = {state}
local inc = {}
local function count(name, k) inc[name] = (inc[name] or 0) + (k or 1) end
-- records written by this batch: by field (for a field met twice), and as
-- HSET arguments (a field written twice: the last value wins)
local recs, args, na = {}, {}, 0
local function put(field, rec)
  if type(rec) ~= 'string' then rec = cjson.encode(rec) end
  recs[field] = rec
  args[na + 1], args[na + 2] = field, rec
  na = na + 2
end
-- a fresh claim is written as text: the same JSON cjson would make, cheaper
-- (q, sliced and finish_if_done are the prelude's: lib/prelude.lua)
-- a fresh claim: '{"state":"claimed","channel":C,"slot":"S","owner":O,
-- "attempts":1,"lease":L,"at":T}' (outcome.lua recognizes this prefix)
local claim_tail = '","owner":' .. q(owner) .. ',"attempts":1,"lease":' ..
    string.format('%d', now + lease) .. ',"at":' .. ARGV[2] .. '}'
local claim_head = {}
local links = {} -- 'K' runs: per channel, address, contact_id of the fresh claims

for j = 1, n do
  local ch, slot, flags = chs[j], slots[j], flagss[j]
  local field = fields[j]
  local r = recs[field] or raws[j]
  if r then r = cjson.decode(r) end
  local code
  if not r then
    if state == 'cancelled' or state == 'done' then
      put(field, {state = 'cancelled', channel = ch, slot = slot, at = now})
      count('cancelled')
      code = 'cancelled'
      conv_cancelled(field, ch)
    elseif suppressed[field] then
      put(field, {state = 'suppressed', channel = ch, slot = slot, at = now})
      count('suppressed')
      code = 'sup'
      -- a conversation message to a contact who opted out ends failed
      -- (suppressed) in its conversation's log and events
      local cv = conv_of_campaign()
      if cv ~= '' then
        conv_status(prefix, cv, id, 'failed', ch, string.sub(field, #ch + 2), nil, 'suppressed', now)
      end
    elseif csup[j] then
      put(field, {state = 'suppressed', channel = ch, slot = slot, at = now, reason = 'opted_out',
                  contact_id = cids[j]})
      count('suppressed')
      code = 'sup'
      local cv = conv_of_campaign()
      if cv ~= '' then
        conv_status(prefix, cv, id, 'failed', ch, string.sub(field, #ch + 2), nil, 'suppressed', now)
      end
    else
      if cids[j] then
        -- the address belongs to this contact: an opt-out on it reaches the contact
        local l = links[ch]
        if not l then l = {}; links[ch] = l end
        l[#l + 1] = addrs[j]
        l[#l + 1] = cids[j]
      end
      local h = claim_head[ch]
      if not h then h = '{"state":"claimed","channel":' .. q(ch) .. ',"slot":"'; claim_head[ch] = h end
      local v = h .. slot .. claim_tail
      recs[field] = v
      args[na + 1], args[na + 2] = field, v
      na = na + 2
      code = 'go:1'
    end
  elseif r.slot ~= slot then
    -- the same address twice in one campaign: count it once as a duplicate
    if redis.call('HSETNX', mk, 'dup:' .. slot, field) == 1 then
      count('suppressed')
      count('duplicates')
    end
    code = 'dup'
  elseif string.find(flags, 'X', 1, true) and r.owner == owner and
      (r.state == 'claimed' or (r.state == 'uncertain' and r.reason == 'owner_lost')) then
    -- the owner renews a claim it holds unsent (declared uncertain
    -- meanwhile by another's claim: it was never sent, so it is taken back)
    if r.state == 'uncertain' then
      count('uncertain', -1)
      r.state = 'claimed'
      r.reason = nil
      r.claimed_at = nil
    end
    r.lease = now + lease
    put(field, r)
    code = 'go:' .. (r.attempts or 1)
  elseif r.state == 'claimed' then
    if r.owner == owner then
      -- claimed by this very process: its reply was lost (never sent: a
      -- send starts only after the claim is answered), or this is a
      -- second copy of the recipient in that process; it knows which
      code = 'own:' .. (r.attempts or 1)
    elseif string.sub(r.owner, 1, #mine) == mine or tonumber(r.lease) <= now then
      -- a previous life of this consumer, or an owner gone silent
      r.state = 'uncertain'
      r.reason = 'owner_lost'
      r.claimed_at = r.at
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
        conv_cancelled(field, r.channel or ch)
      else
        r.state = 'claimed'
        r.owner = owner
        r.lease = now + lease
        r.attempts = (tonumber(r.attempts) or 1) + 1
        code = 'go:' .. r.attempts
        -- the operator's resend-uncertain: a second message on purpose,
        -- whatever the sender's memory says (rs:N)
        if r.error == 'resend_uncertain' then code = 'rs:' .. r.attempts end
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
  if any_w and string.find(flags, 'W', 1, true) and (string.find(code, '^go:') or
      string.find(code, '^rs:') or string.find(code, '^own:')) then
    local t = tonumber(redis.call('HGET', prefix .. 'contact:' .. ch .. ':' .. addrs[j],
      'last_inbound'))
    if not t or t ~= t or t < 0 or t > 1e15 then t = 0 end
    code = code .. ':' .. string.format('%d', math.floor(t))
  end
  out[j + 1] = code
end

if na > 0 then sliced('HSET', mk, args, 1000) end
for ch, l in pairs(links) do sliced('HSET', prefix .. 'contact_ids:' .. ch, l, 1000) end
if state == 'running' then redis.call('ZADD', active, now, id) end

if next(inc) then
  for k, v in pairs(inc) do
    redis.call('HINCRBY', ck, k, v)
  end
  finish_if_done(prefix, ck, id, state, now)
end
return table.concat(out, ' ')
