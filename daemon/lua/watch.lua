-- Messages not confirmed in time (job key fallback_after_s): the due
-- members of the watch zset, at most max per call. A member is
-- {id}|{slot}|{channel index}|{channel:address} (the record's field),
-- scored with the unix ms by which a delivered or read status had to come;
-- outcome.lua adds it when it records the message sent, inbound.lua removes
-- it when a delivered, read or failed status settles the message. Each due
-- one stops being watched (awaiting - 1) and, unless a status settled it
-- meanwhile, its recipient moves to the next channel (the prelude's
-- fall_back, reason no_delivery). Then each campaign touched finishes if
-- its counters say so.
-- KEYS[1] watch zset
-- ARGV: prefix, now_ms, max
-- Returns {members taken, recipients moved on}.
local wz = KEYS[1]
local prefix, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local due = redis.call('ZRANGEBYSCORE', wz, '-inf', now, 'LIMIT', 0, max)
local moved, touched = 0, {}
for _, m in ipairs(due) do
  redis.call('ZREM', wz, m)
  local c, slot, ci, field = string.match(m, '^([^|]+)|(%d+)|(%d+)|(.+)$')
  if c then
    local mk = prefix .. 'msg:' .. c
    local raw = redis.call('HGET', mk, field)
    local ok, r = false, nil
    if raw then ok, r = pcall(cjson.decode, raw) end
    if ok and type(r) == 'table' and r.slot == slot and r.w ~= nil and tostring(r.w) == ci then
      r.w = nil
      redis.call('HINCRBY', prefix .. 'campaign:' .. c, 'awaiting', -1)
      if r.dlv ~= 'delivered' and r.dlv ~= 'read' and r.dlv ~= 'failed' and
          fall_back(prefix, c, r, 'no_delivery', now) then
        moved = moved + 1
      end
      redis.call('HSET', mk, field, cjson.encode(r))
      touched[c] = true
    end
  end
end
for c in pairs(touched) do
  local ck = prefix .. 'campaign:' .. c
  finish_if_done(prefix, ck, c, redis.call('HGET', ck, 'state'), now)
end
return {#due, moved}
