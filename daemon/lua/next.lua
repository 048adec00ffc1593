-- A chunk is finished: ack it and, for a campaign whose chunks are added
-- as others finish (create.lua with a chunks-ahead count), add its next
-- one at the end of the stream. A campaign thus has at most that many
-- chunks in the stream at once, and every other campaign's chunks are read
-- between them: a big campaign never holds the stream for a small one.
-- KEYS[1] chunks stream   KEYS[2] campaign hash
-- ARGV: group, entry id, campaign id
-- Returns 1 when a chunk was added, else 0.
local chunks, ck = KEYS[1], KEYS[2]
local group, entry, id = ARGV[1], ARGV[2], ARGV[3]
redis.call('XACK', chunks, group, entry)
local c = redis.call('HMGET', ck, 'state', 'next_chunk', 'total', 'chunk_size')
local nx, total, size = tonumber(c[2]), tonumber(c[3]), tonumber(c[4])
if not nx or not total or not size or nx >= total then return 0 end
-- paused: added all the same, and parked by the claim like any chunk of a
-- paused campaign; cancelled or gone: control.lua counted the rest
if c[1] ~= 'running' and c[1] ~= 'paused' then return 0 end
local e = math.min(nx + size, total)
redis.call('XADD', chunks, '*', 'c', id, 's', nx, 'e', e)
redis.call('HSET', ck, 'next_chunk', e)
return 1
