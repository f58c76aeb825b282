-- Live segments by trigger shard (handlers/functions/segments.py): a customer's
-- membership, the segment's member list, its size and the change outbox of their shard
-- move together, so a change is either entirely there or not at all; the relay
-- (streams/relay.py) publishes it to crm.segments.

local function apply(keys, args)
  local call = read_call(APPLY_SEGMENTS, keys, args)
  local shards = {}  -- base -> its keys, worked out once a call
  local segments, versions = {}, {}
  for i, entry in ipairs(fields_of(call.segments, ',')) do
    local cut = string.find(entry, ':', 1, true)
    segments[i], versions[i] = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
  end
  local changes = 0
  for n = 1, call.count do
    local customer = read_item(APPLY_SEGMENTS, keys, args, n)
    local shard = shards[customer.shard]
    if shard == nil then
      shard = keys_under(customer.shard, SEGMENT_KEYS)
      shards[customer.shard] = shard
    end
    local shop, id = customer.shop, customer.customer
    local who = shop .. ':' .. id
    local memberships = shard.memberships .. who
    local sizes = shard.sizes .. shop
    local all_sizes = shard.sizes -- every shop together (no shop id is empty)
    -- A customer only seen (nothing they are evaluated on changed) costs the seen mark alone.
    local evaluated = string.find(customer.flags, '[01]') ~= nil
    local counts = {}
    if evaluated then
      local stored = redis.call('HGETALL', memberships)
      for j = 1, #stored, 2 do counts[stored[j]] = tonumber(stored[j + 1]) end
    end
    for j, segment in ipairs(evaluated and segments or {}) do
      local flag = string.sub(customer.flags, j, j)
      if flag ~= '-' then
        local count = counts[segment] or 0
        local wanted = flag == '1'
        if (count % 2 == 1) ~= wanted then
          count = count + 1
          redis.call('HSET', memberships, segment, count)
          local members = shard.members .. shop .. ':' .. segment
          local change
          if wanted then
            redis.call('ZADD', members, 0, id)
            redis.call('HINCRBY', sizes, segment, 1)
            redis.call('HINCRBY', all_sizes, segment, 1)
            change = 'entered'
          else
            redis.call('ZREM', members, id)
            redis.call('HINCRBY', sizes, segment, -1)
            redis.call('HINCRBY', all_sizes, segment, -1)
            change = 'exited'
          end
          redis.call('XADD', shard.outbox, '*', 'shop', shop, 'customer', id,
            'segment', segment, 'version', versions[j], 'change', change, 'n', count,
            'at', customer.as_of_ms, 'cause', customer.cause)
          changes = changes + 1
        end
      end
    end
    if customer.forget then
      redis.call('DEL', memberships)
      redis.call('ZREM', shard.seen, who)
    elseif customer.last_event_ms ~= 0 then
      redis.call('ZADD', shard.seen, 'GT', customer.last_event_ms, who)
    end
  end
  return reply(SEGMENTS_REPLY, {changes = changes})
end
