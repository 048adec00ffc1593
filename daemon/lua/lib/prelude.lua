-- The helpers every script shares, put in front of each script when the
-- daemon is built (CMakeLists.txt joins this file into one line, without
-- its comment lines, so a script's error messages keep its line numbers
-- off by one). Comments stay on lines of their own here.
--
-- A command over a long list, at most step arguments at a time (Lua's
-- unpack is limited), the answers joined into one table.
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
-- A JSON string: as is when nothing needs escaping, else through cjson.
local function q(s)
  if not string.find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return cjson.encode(s)
end
-- The one "finished" rule: a campaign is finished when every recipient is
-- counted as sent, failed, suppressed, uncertain or cancelled. Given the
-- campaign hash, its id and its state as the caller knows it: a running
-- campaign becomes done, a cancelled one gets its finished_at; either way
-- the recipient list expires after 7 days and the campaign leaves the
-- active index. c, when given, holds the six counters as just read (total,
-- sent, failed, suppressed, uncertain, cancelled, in that order). Returns
-- true when it finished, and the counted sum and the total.
local function finish_if_done(prefix, ck, id, state, now, c)
  if state ~= 'running' and state ~= 'cancelled' then return false end
  c = c or redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain', 'cancelled')
  local total = tonumber(c[1])
  if not total then return false end
  local sum = 0
  for j = 2, 6 do sum = sum + (tonumber(c[j]) or 0) end
  if sum < total then return false, sum, total end
  -- a message still watched for its delivery (fallback_after_s) may yet
  -- move its recipient to the next channel: a running campaign waits
  if state == 'running' and (tonumber(redis.call('HGET', ck, 'awaiting')) or 0) > 0 then
    return false, sum, total
  end
  if state == 'running' then redis.call('HSET', ck, 'state', 'done') end
  redis.call('HSET', ck, 'finished_at', now)
  redis.call('EXPIRE', ck .. ':rcpt', 604800)
  redis.call('ZREM', prefix .. 'active', id)
  return true, sum, total
end
-- Fallback that follows delivery. A message record r (decoded) of
-- campaign c, accepted by the provider (state sent) on a channel that has a
-- next one, then failed (a failed status) or not confirmed in time
-- (fallback_after_s): its recipient moves to the next channel. sent - 1
-- (the next channel's outcome counts it again), fallback + 1, r.fell = why
-- (r stays sent: the channel's no-duplicate rule holds), a retry entry
-- {id}|{slot}|{next channel index} due now. Nothing for a cancelled
-- campaign, a record already moved on, the last channel; a done campaign
-- is reopened (running, in the active index) while its recipient list
-- exists. The caller writes r back. Returns true when it moved it.
local function fall_back(prefix, c, r, why, now)
  if r.state ~= 'sent' or r.fell then return false end
  local ck = prefix .. 'campaign:' .. c
  local h = redis.call('HMGET', ck, 'state', 'spec')
  local state = h[1]
  if not state or state == 'cancelled' or not h[2] then return false end
  local ok, spec = pcall(cjson.decode, h[2])
  if not ok or type(spec) ~= 'table' or type(spec.channels) ~= 'table' then return false end
  local ci
  for i, ch in ipairs(spec.channels) do
    if ch == r.channel then ci = i - 1 end
  end
  if not ci or ci + 1 >= #spec.channels then return false end
  if state == 'done' then
    local rk = ck .. ':rcpt'
    if redis.call('EXISTS', rk) == 0 then return false end
    redis.call('PERSIST', rk)
    redis.call('HSET', ck, 'state', 'running')
    redis.call('HDEL', ck, 'finished_at')
    state = 'running'
  end
  r.fell = why
  redis.call('HINCRBY', ck, 'sent', -1)
  redis.call('HINCRBY', ck, 'fallback', 1)
  redis.call('ZADD', prefix .. 'retry', now, c .. '|' .. r.slot .. '|' .. (ci + 1))
  if state == 'running' then redis.call('ZADD', prefix .. 'active', now, c) end
  return true
end
-- A record r (field f of campaign c's message hash) watched for its
-- delivery (r.w = its channel index, set by outcome.lua) stops being
-- watched: its omni:watch member goes, awaiting - 1. Returns true if it was.
local function unwatch(prefix, c, f, r)
  if r.w == nil then return false end
  redis.call('ZREM', prefix .. 'watch', c .. '|' .. r.slot .. '|' .. tostring(r.w) .. '|' .. f)
  redis.call('HINCRBY', prefix .. 'campaign:' .. c, 'awaiting', -1)
  r.w = nil
  return true
end
-- Failure reasons: the documented list (docs/delivery.md, "Failure
-- reasons"; counters.c has the same one). The campaign counter of a
-- failure: failed_reason:REASON, REASON its part before a colon
-- (missing_var:name counts as missing_var) when listed, else other.
local FAIL_REASONS = {rejected = true, invalid_recipient = true, invalid_address = true, invalid_mailbox = true, unreachable_number = true, not_registered = true, undeliverable = true, not_delivered_marketing = true, invalid_parameter = true, opted_out = true, outside_window = true, policy = true, auth = true, template_error = true, unsupported_type = true, no_content = true, too_long = true, bad_media = true, header_injection = true, feedback_id = true, missing_var = true, bad_template = true, bad_body_template = true, retries_exhausted = true, delivery_failed = true, bad_outcome = true, out_of_memory = true, internal = true}
local function reason_counter(reason)
  local r = string.match(reason or '', '^([^:]*)')
  if not FAIL_REASONS[r] then r = 'other' end
  return 'failed_reason:' .. r
end
-- What a message job (campaign c) says, for a conversation's log and
-- events: its text (else the media caption), and its template's name.
local function msg_text(prefix, c)
  local spec = redis.call('HGET', prefix .. 'campaign:' .. c, 'spec')
  local ok, s = pcall(cjson.decode, spec or '')
  if not ok or type(s) ~= 'table' or type(s.message) ~= 'table' then return '', nil end
  local m = s.message
  local text = type(m.text) == 'string' and m.text or
      (type(m.media) == 'table' and type(m.media.caption) == 'string' and m.media.caption) or ''
  local tmpl = type(m.template) == 'table' and type(m.template.name) == 'string' and
      m.template.name or nil
  return text, tmpl
end
-- A conversation message (message job c, in conversation conv) moved on:
-- status sent, delivered, read or failed. Its conversation's log gets a
-- status entry referring to it (append-only: dir "status", ref c) and
-- omni:conversations the event message.{status}. pid and reason may be nil.
local function conv_status(prefix, conv, c, status, ch, addr, pid, reason, now)
  local f = {'dir', 'status', 'ref', c, 'status', status, 'channel', ch, 'at', now}
  if pid and pid ~= '' then
    f[#f + 1] = 'provider_id'
    f[#f + 1] = pid
  end
  if reason and reason ~= '' then
    f[#f + 1] = 'reason'
    f[#f + 1] = reason
  end
  redis.call('XADD', prefix .. 'conv:' .. conv .. ':log', '*', unpack(f))
  local text, tmpl = msg_text(prefix, c)
  local ev = {type = 'message.' .. status, conversation_id = conv, message_id = c, campaign = c,
    contact = addr, channel = ch, text = text, template = tmpl, at = now}
  if pid and pid ~= '' then ev.provider_id = pid end
  if reason and reason ~= '' then ev.reason = reason end
  redis.call('XADD', prefix .. 'conversations', 'MAXLEN', '~', 1000000, '*', 'event', ev.type,
    'data', cjson.encode(ev))
end
