-- Conversions, the phone index and erasure: what keeps a shard's trigger state true.

local function goals(keys, args)
  local call = read_call(GOALS, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  local widest = call.widest_ms
  local converted = 0
  for n = 1, call.count do
    local event = read_item(GOALS, keys, args, n)
    local who, goal, at = event.who, event.goal, event.at_ms
    local known = k.goals .. who
    if redis.call('ZADD', known, 'NX', at, goal .. SEP .. event.event_id) == 1 then
      local open = k.open_goals .. who
      local waiting = redis.call('ZRANGE', open, at - widest, '(' .. at, 'BYSCORE', 'WITHSCORES')
      for j = 1, #waiting, 2 do
        local parts = fields_of(waiting[j], SEP)
        local rule, its_goal, window, group = parts[1], parts[2], tonumber(parts[3]), parts[4]
        if its_goal == goal and tonumber(waiting[j + 1]) + window >= at then
          redis.call('ZREM', open, waiting[j])
          count(k, who, rule, group == 'h' and COUNTED.CONVERTED_HOLDOUT or COUNTED.CONVERTED)
          converted = converted + 1
        end
      end
      -- A trigger decided late (read behind) still finds the goal events of its window.
      redis.call('ZREMRANGEBYSCORE', known, '-inf', '(' .. (at - widest - DAY_MS))
      redis.call('ZREMRANGEBYSCORE', open, '-inf', '(' .. (at - widest - DAY_MS))
      keep_for(known, widest + 2 * DAY_MS)
    end
  end
  return reply(CONVERTED, {converted = converted})
end

-- The outbox entries the relay's group has not read yet that name `who`: withdrawn.
local function withdraw_unread(k, who, group)
  if redis.call('EXISTS', k.outbox) == 0 then return 0 end
  local from, withdrawn = '-', 0
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', k.outbox)) do
    for f = 1, #info, 2 do
      if info[f] == 'name' and info[f + 1] == group then
        for g = 1, #info, 2 do
          if info[g] == 'last-delivered-id' then from = '(' .. info[g + 1] end
        end
      end
    end
  end
  for _, entry in ipairs(redis.call('XRANGE', k.outbox, from, '+')) do
    local fields = entry[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'key' and fields[f + 1] == who then
        withdrawn = withdrawn + redis.call('XDEL', k.outbox, entry[1])
      end
    end
  end
  return withdrawn
end

local function erase(keys, args)
  local call = read_call(ERASE, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  local who = call.who
  local fired = k.fired .. who
  local withdrawn = 0
  for _, trigger_id in ipairs(redis.call('ZRANGE', fired, 0, -1)) do
    withdrawn = withdrawn + redis.call('ZREM', k.held, trigger_id)
    redis.call('HDEL', k.held_payloads, trigger_id)
  end
  redis.call('DEL', fired, k.cooldowns .. who, k.caps .. who, k.open_goals .. who,
    k.goals .. who, k.decision_log .. who)
  local phone = redis.call('HGET', k.phones, 'c' .. SEP .. who)
  if phone then
    redis.call('HDEL', k.phones, shop_of(who) .. SEP .. phone, 'c' .. SEP .. who)
  end
  withdrawn = withdrawn + withdraw_unread(k, who, call.relay_group)
  for n = 1, call.count do
    local index = read_item(ERASE, keys, args, n)
    redis.call(index.is_set and 'SREM' or 'ZREM', index.key, who)
  end
  return reply(WITHDRAWN, {withdrawn = withdrawn})
end

-- The phone index, "<shop> US <phone hash>" → customer and "c US <who>" → phone hash: a
-- customer found by the keyed hash of their phone, their previous number forgotten.
local function index_phones(keys, args)
  local call = read_call(INDEX_PHONES, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  for n = 1, call.count do
    local entry = read_item(INDEX_PHONES, keys, args, n)
    local who, phone = entry.who, entry.phone
    local cut = string.find(who, ':', 1, true)
    local shop, customer = string.sub(who, 1, cut - 1), string.sub(who, cut + 1)
    local previous = redis.call('HGET', k.phones, 'c' .. SEP .. who)
    if previous and previous ~= phone then
      redis.call('HDEL', k.phones, shop .. SEP .. previous)
    end
    redis.call('HSET', k.phones, shop .. SEP .. phone, customer, 'c' .. SEP .. who, phone)
  end
  return reply(INDEXED, {indexed = call.count})
end
