-- A journey instance's move (handlers/functions/triggers.py JourneyMove). The customer's
-- journeys hash, "<journey> US <key>" → "<visit> US <decision> US <position>", moves only
-- from the visit the caller read; the send goes through the guards (emit.lua ``guard``),
-- and its decision is kept with the position, so that a caller that died before reading
-- the reply finds it there. "<journey> US #" → "<entries> US <last entry, ms>".

-- The number before the first separator of a record.
local function leading_number(record)
  return tonumber(string.sub(record, 1, string.find(record, SEP, 1, true) - 1))
end

-- An instance's goal (a journey's conversion, as a rule's): opened when it enters, counted
-- under "journey:<journey>:<version>" as entered, or as holdout when it takes the holdout
-- path; taken later, the holdout path moves an open goal to the control group.
local function journey_goal(k, call)
  local who = call.who
  local name = NAMES.JOURNEY_STATS_PREFIX .. call.journey .. ':' .. call.version
  if call.entered then
    count(k, who, name, call.control and LOGGED.HOLDOUT or NAMES.JOURNEY_ENTERED)
    attribute(k, who, name, call.instance, call.entered_ms, call.goal_key, call.goal_window_ms,
      call.control and 'h' or 's')
    return
  end
  local open = k.open_goals .. who
  local function member(group)
    return table.concat({name, call.goal_key, call.goal_window_ms, group, call.instance}, SEP)
  end
  if redis.call('ZREM', open, member('s')) == 1 then
    redis.call('ZADD', open, call.entered_ms, member('h'))
  end
  redis.call('HINCRBY', k.stats, shop_of(who) .. SEP .. name .. SEP .. NAMES.JOURNEY_ENTERED, -1)
  count(k, who, name, LOGGED.HOLDOUT)
end

local function journey_move(keys, args)
  local call = read_call(JOURNEY_MOVE, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  local who = call.who
  local hash = k.journeys .. who
  local slot = call.journey .. SEP .. call.key
  local stored = redis.call('HGET', hash, slot)
  local visit = 0
  if stored then visit = leading_number(stored) end
  local refused = visit ~= call.expected_visit
  if call.entered and not refused then
    -- An instance is made once for its entry event, though the event be walked again (a
    -- worker died after the move, before the walk was done) and the instance gone since.
    local made = NAMES.ENTERED_MARK .. call.journey .. SEP .. call.instance
    refused = redis.call('ZADD', k.fired .. who, 'NX', call.at_ms, made) == 0
  end
  if refused then
    return reply(JOURNEY_MOVED, {moved = 0, decision = false, stored = stored or false})
  end
  local decision = ''
  if call.count == 1 then
    local send = read_item(JOURNEY_MOVE, keys, args, 1)
    decision = guard(k, send, call.now_ms, call.fired_window_ms, call.log_size)
  end
  if call.position == '' then
    redis.call('HDEL', hash, slot)
  else
    redis.call('HSET', hash, slot, call.visit .. SEP .. decision .. SEP .. call.position)
  end
  if call.entered then
    local entries = call.journey .. SEP .. NAMES.ENTRIES_MARK
    local before = redis.call('HGET', hash, entries)
    local count = before and leading_number(before) or 0
    redis.call('HSET', hash, entries, (count + 1) .. SEP .. call.at_ms)
  end
  if call.goal_key ~= '' and (call.entered or call.control) then journey_goal(k, call) end
  if call.counted ~= '' then
    local base = shop_of(who) .. SEP .. call.journey .. SEP .. call.version .. SEP
    for _, name in ipairs(fields_of(call.counted, '\n')) do
      if string.sub(name, 1, 1) == '-' then
        redis.call('HINCRBY', k.journey_stats, base .. string.sub(name, 2), -1)
      else
        redis.call('HINCRBY', k.journey_stats, base .. name, 1)
      end
    end
  end
  if call.why ~= '' then
    log_decision(k, who, LOGGED.JOURNEY, call.now_ms, call.why, call.log_size, call.fired_window_ms)
  end
  local sent = false -- nil in the reply: no send
  if decision ~= '' then sent = decision end
  return reply(JOURNEY_MOVED, {moved = 1, decision = sent, stored = false})
end
