-- Give back what a process claimed and did not send: on drain (SIGTERM),
-- on pause, on cancel. One call for everything the process lets go of, so
-- a restart or another instance takes it over at once, not after a lease.
-- ARGV: prefix, now_ms, owner, group, chunks stream key, then operations:
--   'P', campaign, channel, address, slot, retry member: put back. A record
--       still claimed by owner becomes `retry`, due now, with the attempt
--       it had not used given back; its retry entry is due now. Another
--       process (or a retry) sends it once.
--   'C', campaign, channel, address, slot, retry member: cancel. A record
--       still claimed by owner (or waiting to retry) ends `cancelled`.
--   'H', campaign, channel, address, slot, due, retry member: put back as
--       'P' does, due at `due` (unix ms) with error `halted`: its connector
--       halted (the daemon makes it due at once when the connector resumes).
--   'D', retry member: a retry taken but not claimed: due again now.
--   'L', retry member, due: a retry taken but not claimed, its connector
--       halted: due again at `due` (unix ms).
--   'K', entry, campaign, first, end: hand a chunk back: acked, and added
--       again at the end of the stream for any instance to read at once
--       (the claim guard skips what is already done).
-- Returns one character per operation: o (done) or s (the record had moved
-- on: nothing written).
local prefix, now, owner, group, chunks = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local retry = prefix .. 'retry'
local out = {}
local counts = {} -- campaign -> cancelled added

local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'P' or op == 'C' or op == 'H' then
    local c, ch, addr, slot, member = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    local due, err = now, 'released'
    if op == 'H' then
      due, err, member = tonumber(ARGV[i + 5]) or now, 'halted', ARGV[i + 6]
      i = i + 1
    end
    i = i + 6
    local mk, field = prefix .. 'msg:' .. c, ch .. ':' .. addr
    local v = redis.call('HGET', mk, field)
    local r = v and cjson.decode(v)
    if r and r.slot == slot and ((r.state == 'claimed' and r.owner == owner) or
        (op == 'C' and r.state == 'retry')) then
      if op ~= 'C' then
        r.state = 'retry'
        r.error = err
        r.due = due
        r.attempts = math.max((tonumber(r.attempts) or 1) - 1, 0)
        r.owner, r.lease = nil, nil
        r.at = now
        redis.call('HSET', mk, field, cjson.encode(r))
        redis.call('ZADD', retry, due, member)
      else
        r.state = 'cancelled'
        r.owner, r.lease, r.due = nil, nil, nil
        r.at = now
        redis.call('HSET', mk, field, cjson.encode(r))
        redis.call('ZREM', retry, member)
        counts[c] = (counts[c] or 0) + 1
      end
      out[#out + 1] = 'o'
    else
      out[#out + 1] = 's'
    end
  elseif op == 'D' then
    redis.call('ZADD', retry, 'XX', now, ARGV[i + 1])
    i = i + 2
    out[#out + 1] = 'o'
  elseif op == 'L' then
    redis.call('ZADD', retry, 'XX', tonumber(ARGV[i + 2]) or now, ARGV[i + 1])
    i = i + 3
    out[#out + 1] = 'o'
  elseif op == 'K' then
    local entry, c, s, e = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    i = i + 5
    redis.call('XACK', chunks, group, entry)
    redis.call('XADD', chunks, '*', 'c', c, 's', s, 'e', e)
    out[#out + 1] = 'o'
  else
    return redis.error_reply('release: unknown operation ' .. tostring(op))
  end
end

for c, k in pairs(counts) do
  local ck = prefix .. 'campaign:' .. c
  redis.call('HINCRBY', ck, 'cancelled', k)
  local s = redis.call('HMGET', ck, 'total', 'sent', 'failed', 'suppressed', 'uncertain',
    'cancelled', 'state')
  local sum = 0
  for j = 2, 6 do sum = sum + (tonumber(s[j]) or 0) end
  if s[1] and sum >= tonumber(s[1]) and s[7] == 'cancelled' then
    redis.call('HSET', ck, 'finished_at', now)
    redis.call('EXPIRE', ck .. ':rcpt', 604800)
    redis.call('ZREM', prefix .. 'active', c)
  end
end
return table.concat(out)
