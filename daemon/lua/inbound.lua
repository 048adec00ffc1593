-- Inbound events, one call each, idempotent (providers retry webhooks):
-- delivery statuses move message records forward and count the funnel;
-- replies open or continue the contact's conversation, attributed to the
-- campaign that caused them, and are published for CRMs; opt-outs and
-- opt-ins change the suppression set. Also opens proactive conversations.
-- ARGV[1] prefix, ARGV[2] now_ms, ARGV[3] kind, then per kind:
--   status:    connector, provider_id, state, error, meaning (KIND:REASON or "")
--   reply:     connector, channel, from, to, text, provider_id, in_reply_to,
--              action (reply|optout|optin), window_ms, name, msgkind, payload,
--              other (another address of the contact, or ""): a changed-number
--              notice's new one, a business-scoped user id given beside from
--   pref:      connector, channel, from, action (optout|optin), in_reply_to,
--              via (e.g. user_preferences, payload), window_ms
--   unsub:     connector, provider_id ("token:MSGID")
--   bounce:    connector, provider_id, state (hard|soft), error, via (dsn, ses,
--              mailgun, ...), reported address
--   complaint: connector, provider_id, feedback type, error, via, reported address
--   proactive: channel, contact, campaign, text
--   agent:     conversation id, message id, text, job (JSON): a conversation
--              message: logged queued and its job added to the jobs stream
--   close:     conversation id
local P, now, kind = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local DEDUP_TTL = 604800
-- failed-status error codes that never move a recipient to its next
-- channel: the opt-out (131050) and the account-level (halt) codes
local NO_FALLBACK = {['131050'] = true, ['190'] = true, ['10'] = true, ['200'] = true,
  ['131031'] = true, ['131042'] = true, ['368'] = true, ['132015'] = true, ['132016'] = true}

local function publish(ev)
  ev.at = now
  redis.call('XADD', P .. 'conversations', 'MAXLEN', '~', 1000000, '*', 'event', ev.type,
    'data', cjson.encode(ev))
end

local function metadata(c)
  if not c then return nil end
  local spec = redis.call('HGET', P .. 'campaign:' .. c, 'spec')
  if not spec then return nil end
  local ok, s = pcall(cjson.decode, spec)
  if ok and type(s) == 'table' then return s.metadata end
  return nil
end

-- the campaign and recipient of one of our messages, by provider id, when
-- the connector instance the event came in on sent it: an index value with
-- another connector's name ("k") is not ours to move (an entry written
-- before "k" existed matches any connector)
local function lookup(pid, connector)
  if not pid or pid == '' then return nil end
  local v = redis.call('GET', P .. 'pmid:' .. pid)
  if not v then
    -- email: In-Reply-To is MESSAGE_ID@domain; reply tokens are token:MESSAGE_ID
    local bare = string.match(pid, '^token:(.+)$') or string.match(pid, '^([^@]+)@')
    if bare then v = redis.call('GET', P .. 'pmid:' .. bare) end
  end
  if not v then return nil end
  local m = cjson.decode(v)
  if m.k and m.k ~= connector then return nil end
  return m
end

-- the address campaigns use for a contact the provider knows under another
-- id (alias:{channel}:{id}, written by outcome.lua from a send answer, and
-- by a changed-number notice below); the id itself when there is none
local function aliased(channel, addr)
  return redis.call('GET', P .. 'alias:' .. channel .. ':' .. addr) or addr
end

-- optout_scope = contact: the contact an address belongs to (its contact_id
-- in omni:contact_ids:{channel}, written by claim.lua when a campaign whose
-- recipient carried it claimed the address). An opt-out on the address
-- adds the contact to omni:suppress_contacts, an opt-in removes it; claim.lua
-- reads the set only with optout_scope = contact. Returns the contact_id (or
-- nil) and whether the set changed.
local function contact_of(channel, addr)
  local cid = redis.call('HGET', P .. 'contact_ids:' .. channel, addr)
  if cid then return cid end
  return nil
end
local function contact_opt(channel, addr, out)
  local cid = contact_of(channel, addr)
  if not cid then return nil, false end
  local n = redis.call(out and 'SADD' or 'SREM', P .. 'suppress_contacts', cid)
  return cid, n == 1
end

local function counted_once(c, set, addr, counter)
  if redis.call('SADD', P .. 'campaign:' .. c .. ':' .. set, addr) == 1 then
    redis.call('HINCRBY', P .. 'campaign:' .. c, counter, 1)
  end
end

-- find the contact's open conversation on the channel, or open one
local function conversation(channel, contact, origin, campaign, connector, name)
  local ckey = P .. 'contact:' .. channel .. ':' .. contact
  local id = redis.call('HGET', ckey, 'open_conv')
  if id and redis.call('HGET', P .. 'conv:' .. id, 'state') == 'open' then
    return id, false
  end
  id = 'cv' .. redis.call('INCR', P .. 'conv:seq')
  local h = {'id', id, 'contact', contact, 'channel', channel, 'origin', origin, 'state', 'open',
             'created_at', now, 'updated_at', now}
  if campaign then table.insert(h, 'campaign'); table.insert(h, campaign) end
  if connector then table.insert(h, 'connector'); table.insert(h, connector) end
  if name and name ~= '' then table.insert(h, 'name'); table.insert(h, name) end
  redis.call('HSET', P .. 'conv:' .. id, unpack(h))
  redis.call('HSET', ckey, 'open_conv', id)
  redis.call('ZADD', P .. 'conv:open', now, id)
  redis.call('ZADD', P .. 'conv:all', now, id)
  if campaign then redis.call('ZADD', P .. 'conv:campaign:' .. campaign, now, id) end
  publish({type = 'conversation.created', conversation_id = id, channel = channel,
           contact = contact, origin = origin, campaign = campaign, metadata = metadata(campaign)})
  return id, true
end

local function append(id, dir, text, pid, extra)
  local f = {'dir', dir, 'text', text or '', 'at', now}
  if pid and pid ~= '' then table.insert(f, 'provider_id'); table.insert(f, pid) end
  for k, v in pairs(extra or {}) do table.insert(f, k); table.insert(f, v) end
  redis.call('XADD', P .. 'conv:' .. id .. ':log', '*', unpack(f))
  redis.call('HSET', P .. 'conv:' .. id, 'updated_at', now, 'last_message_at', now)
  if redis.call('HGET', P .. 'conv:' .. id, 'state') == 'open' then
    redis.call('ZADD', P .. 'conv:open', now, id)
  end
end

-- campaign c's text as it went to the recipient at address addr on channel
-- ch (its record's slot: the recipient's place in campaign:{c}:rcpt), read
-- back when asked, never stored per recipient: the spec's text with the
-- recipient's vars, the job's defaults, an inline default, and to, channel,
-- campaign. Returns the text and whether it is rendered (false: the
-- recipient list expired or a variable cannot be had: the text as written).
local function rendered(c, spec, r, ch, addr)
  local text = spec.message.text
  if not string.find(text, '{{', 1, true) then return text, true end
  local rec = r and r.slot and redis.call('LINDEX', P .. 'campaign:' .. c .. ':rcpt',
    tonumber(r.slot) or -1)
  local ok, rv = pcall(cjson.decode, rec or '')
  if not ok or type(rv) ~= 'table' then return text, false end
  local to = rv.to
  if type(to) == 'table' then to = to[ch] end
  if to ~= addr then return text, false end
  local vars = type(rv.vars) == 'table' and rv.vars or {}
  local defs = type(spec.defaults) == 'table' and spec.defaults or {}
  local builtin = {to = addr, channel = ch, campaign = c}
  local missing = false
  local function val(n, d)
    local v = vars[n]
    if v == nil then v = defs[n] end
    if v == nil then v = d end
    if v == nil then v = builtin[n] end
    if type(v) == 'number' or type(v) == 'boolean' then v = tostring(v) end
    if type(v) ~= 'string' then missing = true return '' end
    return v
  end
  local out = string.gsub(text, '{{{%s*([%w_%.%-]+)%s*}}}', function(n) return val(n) end)
  out = string.gsub(out, '{{%s*([%w_%.%-]+)%s*|([^}]*)}}', function(n, d)
    if d == 'raw' then return val(n) end
    return val(n, d)
  end)
  out = string.gsub(out, '{{%s*([%w_%.%-]+)%s*}}', function(n) return val(n) end)
  if missing then return text, false end
  return out, true
end

-- the first entry of a conversation a reply opened, attributed to campaign
-- c: the campaign's message to the contact (dir out, kind campaign) with
-- its provider id, channel and, when it can be had, its text
local function campaign_entry(id, c, ch, addr)
  local raw = redis.call('HGET', P .. 'msg:' .. c, ch .. ':' .. addr)
  local ok, r = pcall(cjson.decode, raw or '')
  if not ok or type(r) ~= 'table' then r = nil end
  local extra = {kind = 'campaign', campaign = c, channel = ch}
  local text = ''
  local spec = redis.call('HGET', P .. 'campaign:' .. c, 'spec')
  local sok, s = pcall(cjson.decode, spec or '')
  if sok and type(s) == 'table' and type(s.message) == 'table' then
    if type(s.message.text) == 'string' then
      local done
      text, done = rendered(c, s, r, ch, addr)
      extra.rendered = done and '1' or '0'
    end
    if type(s.message.template) == 'table' and type(s.message.template.name) == 'string' then
      extra.template = s.message.template.name
    end
  end
  if r and r.at then extra.sent_at = r.at end
  append(id, 'out', text, r and r.provider_id or nil, extra)
end

if kind == 'status' then
  local connector, pid, state, err = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  -- what the connector says the error means, KIND:REASON (Twilio's
  -- ErrorCode: failed:unreachable_number, halt:unregistered_sender, ...)
  local meaning = ARGV[8] or ''
  if redis.call('SET', P .. 'evt:' .. connector .. ':s:' .. pid .. ':' .. state, 1, 'NX', 'EX',
      DEDUP_TTL) == false then
    return {'duplicate'}
  end
  local m = lookup(pid, connector)
  if not m then return {'unknown'} end
  local mk = P .. 'msg:' .. m.c
  local field = m.ch .. ':' .. m.a
  local raw = redis.call('HGET', mk, field)
  if not raw then return {'unknown'} end
  local r = cjson.decode(raw)
  local rank = {sent = 1, delivered = 2, read = 3}
  local old = rank[r.dlv or ''] or 0
  local ck = P .. 'campaign:' .. m.c
  -- settled (failed, delivered, read): no longer watched for fallback_after_s
  local settled = false
  local fail_reason
  -- the recipient moved on to its next channel: not failed for good
  local moved = false
  if state == 'failed' then
    if r.dlv == 'failed' or old >= 2 then return {'stale'} end
    r.dlv = 'failed'
    -- a bare provider code (Twilio's ErrorCode) is kept as a number
    r.dlv_error = tonumber(err) or err
    if meaning ~= '' then r.dlv_reason = meaning end
    if meaning == 'failed:unreachable_number' then
      -- the number does not exist or cannot take SMS: never again on this channel
      redis.call('SADD', P .. 'suppress:' .. m.ch, m.a)
    end
    redis.call('HINCRBY', ck, 'failed_after_send', 1)
    redis.call('HINCRBY', ck, 'failed:' .. m.ch, 1)
    local code = string.match(err or '', '^(%d+)')
    -- by reason: the connector's meaning (failed:REASON), WhatsApp's
    -- opt-out code, else delivery_failed (the provider gave up on it)
    local why = string.match(meaning, '^failed:(.+)$') or (code == '131050' and 'opted_out') or
        'delivery_failed'
    fail_reason = reason_counter(why)
    redis.call('HINCRBY', ck, fail_reason, 1)
    if code == '131050' then
      -- WhatsApp: the user stopped marketing messages; suppressed like an opt-out
      local cid, cnew = contact_opt(m.ch, m.a, true)
      if redis.call('SADD', P .. 'suppress:' .. m.ch, m.a) == 1 or cnew then
        counted_once(m.c, 'optouts', m.a, 'opted_out')
        publish({type = 'contact.opted_out', channel = m.ch, contact = m.a, campaign = m.c,
                 via = 'status', contact_id = cid})
      end
    end
    settled = unwatch(P, m.c, field, r)
    -- the recipient moves to its next channel, unless it opted out or the
    -- error is the account's (a halt reason: the next channel would not help
    -- the account, and the message is not the recipient's fault)
    if not NO_FALLBACK[code or ''] and string.sub(meaning, 1, 5) ~= 'halt:' and
        fall_back(P, m.c, r, 'failed_status', now) then
      settled = false
      moved = true
    end
  else
    local new = rank[state]
    if not new or r.dlv == 'failed' or new <= old then return {'stale'} end
    -- a read implies delivered, even when the delivered status never came
    if old < 2 and new >= 2 then
      redis.call('HINCRBY', ck, 'delivered', 1)
      redis.call('HINCRBY', ck, 'delivered:' .. m.ch, 1)
      settled = unwatch(P, m.c, field, r)
    end
    if new == 3 then
      redis.call('HINCRBY', ck, 'read', 1)
      redis.call('HINCRBY', ck, 'read:' .. m.ch, 1)
    end
    r.dlv = state
  end
  r.dlv_at = now
  redis.call('HSET', mk, field, cjson.encode(r))
  -- a proactive or conversation message ("v": its conversation): the
  -- conversation's log and the CRM follow it; a broadcast's statuses do not
  -- (the provider's own "sent" status adds nothing: outcome.lua logged the
  -- send; a failed message that moved on to its next channel is not failed)
  if m.v and m.v ~= '' and state ~= 'sent' and not moved then
    local why = nil
    if state == 'failed' then
      why = string.match(meaning, '^[^:]*:(.+)$') or (err ~= '' and err or nil)
    end
    conv_status(P, m.v, m.c, state, m.ch, m.a, pid, why, now)
  end
  -- the last watched message settled: the campaign may be finished now
  if settled then finish_if_done(P, ck, m.c, redis.call('HGET', ck, 'state'), now) end
  -- a failed status: its channel and reason counter, for /metrics
  if fail_reason then return {'ok', m.c, m.ch, fail_reason} end
  return {'ok', m.c}

elseif kind == 'reply' then
  local connector, channel, from, to, text, pid, irt, action, window, name, mkind, payload =
      ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
      tonumber(ARGV[12]), ARGV[13], ARGV[14], ARGV[15] or ''
  if pid ~= '' and redis.call('SET', P .. 'evt:' .. connector .. ':r:' .. pid, 1, 'NX', 'EX',
      DEDUP_TTL) == false then
    return {'duplicate'}
  end
  from = aliased(channel, from)
  local other = ARGV[16] or ''
  if other ~= '' and other ~= from and (mkind ~= 'system' or payload == 'user_changed_number') then
    -- the contact's other address (its new number, its BSUID) stands for it
    redis.call('SET', P .. 'alias:' .. channel .. ':' .. other, from)
  end
  if mkind == 'system' then
    -- a notice from the provider (a changed number, ...), not the contact's
    -- reply: no conversation opened, nothing counted, no keyword acted on;
    -- kept in an open conversation's log and published
    local id = redis.call('HGET', P .. 'contact:' .. channel .. ':' .. from, 'open_conv')
    if id and redis.call('HGET', P .. 'conv:' .. id, 'state') == 'open' then
      append(id, 'in', text, pid, {kind = 'system', payload = payload})
    else
      id = nil
    end
    publish({type = 'contact.system', conversation_id = id, channel = channel, contact = from,
             text = text, provider_id = pid, subtype = payload,
             new_address = payload == 'user_changed_number' and other ~= '' and other or nil})
    return {'ok', id or '', '0', ''}
  end
  -- the contact wrote: its customer service window (WhatsApp: 24 h) opens
  -- now; claim.lua reads this for message jobs on a channel with a window
  redis.call('HSET', P .. 'contact:' .. channel .. ':' .. from, 'last_inbound', now)
  -- attribution: the campaign whose message this one quotes wins; else the
  -- last campaign that reached the contact on this channel within the window
  -- (a message job, "v" in its index value, is never a campaign to
  -- attribute to: a reply quoting an agent's message goes by the last campaign)
  local campaign = nil
  local m = lookup(irt, connector)
  if m and m.v == nil then campaign = m.c else m = nil end
  if not campaign then
    local ct = redis.call('HMGET', P .. 'contact:' .. channel .. ':' .. from, 'last_campaign',
      'last_sent')
    if ct[1] and tonumber(ct[2]) and now - tonumber(ct[2]) <= window then campaign = ct[1] end
  end
  local id, created = conversation(channel, from, 'reply', campaign, connector, name)
  if created and campaign then
    -- the campaign message the contact answers opens the log
    campaign_entry(id, campaign, m and m.ch or channel, m and m.a or from)
  end
  local extra = {kind = mkind}
  if payload ~= '' then extra.payload = payload end
  append(id, 'in', text, pid, extra)
  -- an opt-out keyword is stored and published like any message but is not a
  -- reply in the funnel: it counts opted_out (below), never replied
  if campaign and action ~= 'optout' then counted_once(campaign, 'repliers', from, 'replied') end
  publish({type = 'message.received', conversation_id = id, channel = channel, contact = from,
           text = text, provider_id = pid, campaign = campaign, metadata = metadata(campaign),
           kind = mkind, payload = payload ~= '' and payload or nil})
  if action == 'optout' then
    redis.call('SADD', P .. 'suppress:' .. channel, from)
    local cid = contact_opt(channel, from, true)
    if campaign then counted_once(campaign, 'optouts', from, 'opted_out') end
    publish({type = 'contact.opted_out', conversation_id = id, channel = channel, contact = from,
             campaign = campaign, contact_id = cid})
  elseif action == 'optin' then
    redis.call('SREM', P .. 'suppress:' .. channel, from)
    local cid = contact_opt(channel, from, false)
    publish({type = 'contact.opted_in', conversation_id = id, channel = channel, contact = from,
             contact_id = cid})
  end
  return {'ok', id, created and '1' or '0', campaign or ''}

elseif kind == 'pref' then
  -- a stop/resume that is not a message: the suppression set changes, and
  -- only a change is published and counted (a provider's retry changes nothing)
  local connector, channel, from, action, irt, via, window =
      ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
  from = aliased(channel, from)
  local sk = P .. 'suppress:' .. channel
  local conv = redis.call('HGET', P .. 'contact:' .. channel .. ':' .. from, 'open_conv')
  -- no open conversation: nil, never false (cjson would publish "conversation_id": false)
  if not conv or redis.call('HGET', P .. 'conv:' .. conv, 'state') ~= 'open' then conv = nil end
  if action == 'optout' then
    local cid, cnew = contact_opt(channel, from, true)
    if redis.call('SADD', sk, from) == 0 and not cnew then return {'ok', 'unchanged'} end
    local campaign = nil
    local m = lookup(irt, connector)
    if m then campaign = m.c end
    if not campaign then
      local ct = redis.call('HMGET', P .. 'contact:' .. channel .. ':' .. from, 'last_campaign',
        'last_sent')
      if ct[1] and tonumber(ct[2]) and now - tonumber(ct[2]) <= (window or 0) then
        campaign = ct[1]
      end
    end
    if campaign then counted_once(campaign, 'optouts', from, 'opted_out') end
    publish({type = 'contact.opted_out', conversation_id = conv, channel = channel,
             contact = from, campaign = campaign, via = via, contact_id = cid})
    return {'ok', 'optout', campaign or ''}
  end
  local cid, cnew = contact_opt(channel, from, false)
  if redis.call('SREM', sk, from) == 0 and not cnew then return {'ok', 'unchanged'} end
  publish({type = 'contact.opted_in', conversation_id = conv, channel = channel, contact = from,
           via = via, contact_id = cid})
  return {'ok', 'optin'}

elseif kind == 'unsub' then
  local connector, pid = ARGV[4], ARGV[5]
  local m = lookup(pid, connector)
  if not m then return {'unknown'} end
  local cid, cnew = contact_opt(m.ch, m.a, true)
  if redis.call('SADD', P .. 'suppress:' .. m.ch, m.a) == 1 or cnew then
    counted_once(m.c, 'optouts', m.a, 'opted_out')
    publish({type = 'contact.opted_out', channel = m.ch, contact = m.a, campaign = m.c,
             via = 'list-unsubscribe', contact_id = cid})
  end
  return {'ok', m.c}

elseif kind == 'bounce' or kind == 'complaint' then
  -- a delivery report about one of our messages (attributed by the
  -- connector: a verified VERP token or our Message-ID): a hard bounce or a
  -- complaint suppresses the message's recipient on its channel; counted
  -- and published once per address and campaign; a provider's retry of the
  -- same report changes nothing
  local connector, pid, state, err, via, reported = ARGV[4], ARGV[5], ARGV[6], ARGV[7],
      ARGV[8], ARGV[9]
  local hard = kind == 'complaint' or state == 'hard'
  if redis.call('SET', P .. 'evt:' .. connector .. ':' .. (kind == 'bounce' and 'b' or 'c') ..
      ':' .. pid .. ':' .. (hard and 'h' or 's'), 1, 'NX', 'EX', DEDUP_TTL) == false then
    return {'duplicate'}
  end
  local m = lookup(pid, connector)
  if not m then return {'unknown'} end
  if not hard then
    counted_once(m.c, 'soft_bounces', m.a, 'soft_bounced')
    return {'ok', m.c, 'soft'}
  end
  redis.call('SADD', P .. 'suppress:' .. m.ch, m.a)
  local set, counter, evtype = 'bounces', 'bounced', 'contact.bounced'
  if kind == 'complaint' then set, counter, evtype = 'complaints', 'complained', 'contact.complained' end
  if redis.call('SADD', P .. 'campaign:' .. m.c .. ':' .. set, m.a) == 1 then
    redis.call('HINCRBY', P .. 'campaign:' .. m.c, counter, 1)
    local ev = {type = evtype, channel = m.ch, contact = m.a, campaign = m.c, via = via,
                metadata = metadata(m.c)}
    if kind == 'complaint' then ev.feedback_type = state else ev.error = err ~= '' and err or nil end
    if reported ~= '' and reported ~= m.a then ev.reported = reported end
    publish(ev)
  end
  return {'ok', m.c, kind}

elseif kind == 'proactive' then
  local channel, contact, campaign, text = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local id, created = conversation(channel, contact, 'proactive', campaign, nil, nil)
  redis.call('SET', P .. 'conv:of:' .. campaign, id)
  append(id, 'out', text, nil, {campaign = campaign, ref = campaign, status = 'queued'})
  return {'ok', id, created and '1' or '0'}

elseif kind == 'agent' then
  -- checked and written in one step: a conversation closed meanwhile takes
  -- nothing; the same message id again is the same message (exists)
  local id, mid, text, jobjson = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local st = redis.call('HGET', P .. 'conv:' .. id, 'state')
  if not st then return {'missing'} end
  local of = redis.call('GET', P .. 'conv:of:' .. mid)
  if of then return {of == id and 'exists' or 'taken', of} end
  if redis.call('EXISTS', P .. 'campaign:' .. mid) == 1 then return {'taken', ''} end
  if st ~= 'open' then return {'closed'} end
  redis.call('SET', P .. 'conv:of:' .. mid, id)
  append(id, 'out', text, nil, {ref = mid, status = 'queued', kind = 'agent'})
  local e = redis.call('XADD', P .. 'jobs', '*', 'job', jobjson)
  return {'ok', e}

elseif kind == 'close' then
  local id = ARGV[4]
  local ck = P .. 'conv:' .. id
  local c = redis.call('HMGET', ck, 'state', 'channel', 'contact')
  if not c[1] then return {'missing'} end
  if c[1] == 'closed' then return {'ok', 'closed'} end
  redis.call('HSET', ck, 'state', 'closed', 'closed_at', now, 'updated_at', now)
  redis.call('ZREM', P .. 'conv:open', id)
  local contact = P .. 'contact:' .. c[2] .. ':' .. c[3]
  if redis.call('HGET', contact, 'open_conv') == id then redis.call('HDEL', contact, 'open_conv') end
  publish({type = 'conversation.closed', conversation_id = id, channel = c[2], contact = c[3]})
  return {'ok', 'closed'}
elseif kind == 'conversion' then
  -- a conversion reported on a conversation (POST /v1/conversations/{id}/
  -- conversion, a conversion job): stored on the conversation, counted on
  -- the campaign it is attributed to: converted once per conversation (its
  -- first conversion), revenue:CUR (thousandths of the unit) every time. The
  -- same idempotency id twice changes nothing and answers the first record.
  -- ARGV: conversation id, value (thousandths), value text, currency,
  -- idempotency id or "", note or "", via (api|job)
  local id, milli, value, cur, key, note, via = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7],
      ARGV[8], ARGV[9], ARGV[10]
  local ck = P .. 'conv:' .. id
  local c = redis.call('HMGET', ck, 'state', 'campaign', 'channel', 'contact')
  if not c[1] then return {'missing'} end
  local rk = ck .. ':conversions'
  local given = key ~= ''
  if given then
    local old = redis.call('HGET', rk, key)
    if old then return {'exists', old} end
  else
    key = '#' .. redis.call('HINCRBY', ck, 'conversion_seq', 1)
  end
  local campaign = c[2] or nil
  local cmp = campaign and P .. 'campaign:' .. campaign
  -- a campaign no longer stored counts nothing (its hash would be half made);
  -- a proactive conversation's message job is not a campaign: nothing counted
  if cmp then
    local t = redis.call('HGET', cmp, 'type')
    if not t then
      cmp = nil
    elseif t == 'message' then
      cmp, campaign = nil, nil
    end
  end
  local first = redis.call('HSETNX', ck, 'converted_at', now) == 1
  redis.call('HINCRBY', ck, 'conversions', 1)
  redis.call('HINCRBY', ck, 'revenue:' .. cur, milli)
  if cmp then
    if first then redis.call('HINCRBY', cmp, 'converted', 1) end
    redis.call('HINCRBY', cmp, 'revenue:' .. cur, milli)
  end
  local rec = {conversation_id = id, id = given and key or nil, value = value, currency = cur,
               note = note ~= '' and note or nil, campaign = campaign,
               counted = cmp ~= nil, converted = first, via = via, at = now}
  local enc = cjson.encode(rec)
  redis.call('HSET', rk, key, enc)
  publish({type = 'conversation.converted', conversation_id = id, channel = c[3],
           contact = c[4], campaign = campaign, metadata = metadata(campaign), value = value,
           currency = cur, id = rec.id, note = rec.note, counted = rec.counted,
           converted = first, via = via})
  return {'ok', enc}
end
return redis.error_reply('unknown kind ' .. tostring(kind))
