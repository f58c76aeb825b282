#!lua name=crmstream_segments
--[[
Live segments: memberships, member lists, sizes and the change outbox, of one shard.

KEYS[1] is a trigger shard's base ("<prefix>:{t<n>}:"); every key below shares its
hash tag, so one call changes a customer's membership, the segment's member list,
its size counter and the outbox together: a change is either entirely there or
not at all, and the relay (streams/relay.py) publishes it to crm.segments.
The first argument lists the key suffixes (handlers/keys.py SEGMENT_KEY_SUFFIXES):
memberships, members, sizes, outbox, seen.

A membership is a transition count: odd is in, even is out. The n-th transition of
a customer in a segment is what its change's id is made of, so a change keeps its
id however often the batch that caused it is delivered.
]]

local S_MEMBERSHIPS, S_MEMBERS, S_SIZES, S_OUTBOX, S_SEEN = 1, 2, 3, 4, 5

-- The fields of ``text`` between plain separators, empty ones kept: "a,,b" is three.
local function fields_of(text, sep)
  local out, start = {}, 1
  while true do
    local at = string.find(text, sep, start, true)
    if at == nil then
      out[#out + 1] = string.sub(text, start)
      return out
    end
    out[#out + 1] = string.sub(text, start, at - 1)
    start = at + 1
  end
end

-- ARGV: suffixes, segments ("id:version,…"), then 7 fields per customer: shop, customer,
-- as of (ms), last event time (ms, 0 = a pass: unchanged), flags (a character per
-- segment: 1 in, 0 out, - not evaluated), cause (event id, or the pass), forget (1: an
-- erasure; the memberships go once exited).
-- Returns how many memberships changed.
local function apply(bases, args)
  local base = bases[1]
  local suffixes = fields_of(args[1], ',')
  local segments, versions = {}, {}
  for i, entry in ipairs(fields_of(args[2], ',')) do
    local cut = string.find(entry, ':', 1, true)
    segments[i], versions[i] = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
  end
  local seen = base .. suffixes[S_SEEN]
  local changes = 0
  for i = 3, #args, 7 do
    local shop, customer, as_of = args[i], args[i + 1], args[i + 2]
    local last_event, flags, cause, forget = args[i + 3], args[i + 4], args[i + 5], args[i + 6]
    local who = shop .. ':' .. customer
    local memberships = base .. suffixes[S_MEMBERSHIPS] .. who
    local sizes = base .. suffixes[S_SIZES] .. shop
    local all_sizes = base .. suffixes[S_SIZES] -- every shop together (no shop id is empty)
    local stored = redis.call('HGETALL', memberships)
    local counts = {}
    for j = 1, #stored, 2 do counts[stored[j]] = tonumber(stored[j + 1]) end
    for j, segment in ipairs(segments) do
      local flag = string.sub(flags, j, j)
      if flag ~= '-' then
        local count = counts[segment] or 0
        local wanted = flag == '1'
        if (count % 2 == 1) ~= wanted then
          count = count + 1
          redis.call('HSET', memberships, segment, count)
          local members = base .. suffixes[S_MEMBERS] .. shop .. ':' .. segment
          local change
          if wanted then
            redis.call('ZADD', members, 0, customer)
            redis.call('HINCRBY', sizes, segment, 1)
            redis.call('HINCRBY', all_sizes, segment, 1)
            change = 'entered'
          else
            redis.call('ZREM', members, customer)
            redis.call('HINCRBY', sizes, segment, -1)
            redis.call('HINCRBY', all_sizes, segment, -1)
            change = 'exited'
          end
          redis.call('XADD', base .. suffixes[S_OUTBOX], '*', 'shop', shop, 'customer', customer,
            'segment', segment, 'version', versions[j], 'change', change, 'n', count,
            'at', as_of, 'cause', cause)
          changes = changes + 1
        end
      end
    end
    if forget == '1' then
      redis.call('DEL', memberships)
      redis.call('ZREM', seen, who)
    elseif last_event ~= '0' then
      redis.call('ZADD', seen, 'GT', last_event, who)
    end
  end
  return changes
end

redis.register_function('crm_segments', apply)
