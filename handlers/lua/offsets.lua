#!lua name=crmstream_offsets
--[[
The offsets a partition's state reflects, kept in Redis beside that state.

KEYS[1]: the partition's offsets hash ("<prefix>:{p<n>}:offsets"), topic → the next
offset to read. A batch's effects are written first and its offsets last: Redis
persists and replicates writes in order, so an offset it still holds never runs
ahead of the state, and a Redis that lost recent writes (a crash under
appendfsync everysec, a failover to a lagging replica, a restore) holds older
offsets than the worker recorded: the worker reads Kafka again from there.

handlers/scripts.py names the library and its functions with a digest of this file.
]]

-- ARGV: triples of topic, expected ("" = none yet), next. If every topic holds what the
-- worker expects, the next offsets are recorded ("next" equal to "expected" only checks).
-- Returns {} when recorded, else {topic, held ("" = none), …} for every topic that differs,
-- and writes nothing.
local function advance(keys, args)
  local differ = {}
  for i = 1, #args, 3 do
    local held = redis.call('HGET', keys[1], args[i]) or ''
    if held ~= args[i + 1] then
      differ[#differ + 1] = args[i]
      differ[#differ + 1] = held
    end
  end
  if #differ > 0 then return differ end
  for i = 1, #args, 3 do
    if args[i + 2] ~= args[i + 1] then redis.call('HSET', keys[1], args[i], args[i + 2]) end
  end
  return differ
end

redis.register_function('crm_advance', advance)
