-- Forget the consumers of a stream group that are gone: nothing pending
-- and idle for at least idle_ms (no read, claim or ack that long; a live
-- instance reads every block_ms). Atomic, so a consumer cannot take an
-- entry between the look and the removal; one that is alive after all is
-- created again by its next read.
-- KEYS[1] stream   ARGV: group, own consumer name (never removed), idle_ms
-- Returns the names removed.
local stream, group, self, idle = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', stream) == 0 then return {} end
local ok, list = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, group)
if not ok then return {} end -- no such group (yet)
local removed = {}
for _, c in ipairs(list) do
  local f = {}
  for k = 1, #c - 1, 2 do f[c[k]] = c[k + 1] end
  if f.name ~= self and tonumber(f.pending) == 0 and tonumber(f.idle) >= idle then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, f.name)
    removed[#removed + 1] = f.name
  end
end
return removed
