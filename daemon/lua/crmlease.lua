-- The CRM feed's lease: one daemon at a time posts the events of the
-- conversations stream to crm_webhook_url (crm.c), so the events of one
-- conversation are never posted by two processes at once.
-- KEYS[1]: the lease key (omni:crm:lease).
-- ARGV: op ('take' or 'drop'), owner (consumer/incarnation), lease ms.
--   take: the owner takes the lease when nobody holds it (returns 2) or
--         keeps it for another lease ms when it already holds it (1);
--         0 when another process holds it.
--   drop: gives the lease up when the owner holds it (1), else 0.
local key, op, owner = KEYS[1], ARGV[1], ARGV[2]
local cur = redis.call('GET', key)
if op == 'drop' then
  if cur == owner then
    redis.call('DEL', key)
    return 1
  end
  return 0
end
local ms = tonumber(ARGV[3])
if cur == owner then
  redis.call('PEXPIRE', key, ms)
  return 1
end
if cur then return 0 end
redis.call('SET', key, owner, 'PX', ms)
return 2
