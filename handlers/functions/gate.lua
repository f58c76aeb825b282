-- The send gate (rules/send_gate.py): a customer's marketing sends per channel and local
-- day, across every rule and journey of the shop. One hash per customer (k.caps .. who),
-- so that an erasure finds it whole:
--   "<channel>:<day>"     → sends that day (a day number, in the customer's time zone)
--   "<channel>:<day>:by"  → "<priority> US <rule>" of the send that took the last of them
--   "<channel>:held"      → the send that took the channel's last slot and waits out the
--                           shop's collection window (GATE_HELD below), so that a send of
--                           higher priority decided within it may take the slot instead

local GATE_TTL_S = 9 * 86400 -- seven local days, the widest timezone offsets, slack
local GATE_FIELDS_KEPT = 32 -- past this many fields, days older than a week go
-- The fields of a "<channel>:held" record, in order.
local GATE_HELD = {'trigger_id', 'priority', 'rule', 'day', 'span', 'at', 'cooldown_before',
  'goal', 'goal_window', 'counted'}

-- Sends on the candidate's channel on its day, and over its seven days (today and six
-- before) when it has a weekly cap.
local function gate_used(caps, c)
  local channel = c.channel .. ':'
  if c.week_cap == 0 then
    local today = tonumber(redis.call('HGET', caps, channel .. c.cap_day) or '0')
    return today, today
  end
  local fields = {}
  for day = c.cap_day - 6, c.cap_day do fields[#fields + 1] = channel .. day end
  local got = redis.call('HMGET', caps, unpack(fields))
  local week = 0
  for i = 1, 7 do week = week + (tonumber(got[i]) or 0) end
  return tonumber(got[7]) or 0, week
end

-- 'open': a slot is left after this one; 'last': this takes the last of the day or the
-- week; 'full': none is left. With 'last' and 'full', which cap: 'day' or 'week'. From the
-- sends counted already: on the candidate's day, and over its seven.
local function gate_verdict(c, today, week)
  local day_left = c.day_cap - today
  local week_left = c.week_cap > 0 and c.week_cap - week or day_left
  if day_left <= 0 then return 'full', 'day' end
  if week_left <= 0 then return 'full', 'week' end
  if day_left == 1 then return 'last', 'day' end
  if week_left == 1 then return 'last', 'week' end
  return 'open'
end

local function gate_held_record(caps, channel)
  local stored = redis.call('HGET', caps, channel .. ':held')
  if not stored then return nil end
  local values, out = fields_of(stored, SEP), {}
  for i, name in ipairs(GATE_HELD) do out[name] = values[i] end
  return out
end

-- The held send gives its slot up: out of the held set, its count, cooldown and open goal
-- undone, counted and logged as capped, naming the send that took its place.
local function gate_give_up(k, c, held, now, log_size, window)
  local who, rule, tid = c.who, held.rule, held.trigger_id
  redis.call('ZREM', k.held, tid)
  redis.call('HDEL', k.held_payloads, tid)
  local caps = k.caps .. who
  redis.call('HDEL', caps, c.channel .. ':held')
  redis.call('HINCRBY', caps, c.channel .. ':' .. held.day, -1)
  local cooldowns = k.cooldowns .. who
  if redis.call('HGET', cooldowns, rule) == held.at then
    if held.cooldown_before == '' then redis.call('HDEL', cooldowns, rule)
    else redis.call('HSET', cooldowns, rule, held.cooldown_before) end
  end
  local group = held.counted == LOGGED.HOLDOUT and 'h' or 's'
  local member = table.concat({rule, held.goal, held.goal_window, group, tid}, SEP)
  if redis.call('ZREM', k.open_goals .. who, member) == 0 then
    -- Converted at once (its goal event was already known): the conversion goes with it.
    local converted = group == 'h' and COUNTED.CONVERTED_HOLDOUT or COUNTED.CONVERTED
    redis.call('HINCRBY', k.stats, shop_of(who) .. SEP .. rule .. SEP .. converted, -1)
  end
  redis.call('HINCRBY', k.stats, shop_of(who) .. SEP .. rule .. SEP .. held.counted, -1)
  count(k, who, rule, LOGGED.CAPPED)
  local why = cjson.encode({rule = rule, at = tonumber(held.at), trigger_id = tid,
    channel = c.channel, capped_by = {rule = c.rule_id, priority = c.priority, span = held.span}})
  log_decision(k, who, LOGGED.CAPPED, now, why, log_size, window)
  count_minute(k, who, rule, LOGGED.CAPPED, now)
end

-- What the candidate may do under its channel's caps: 'open', 'last' or 'full' (and the
-- spent cap). A full channel whose last slot is held by a send of lower priority, still
-- within its window, and on a day that counts for this one, is taken from it.
local function gate_claim(k, c, now, log_size, window)
  local caps = k.caps .. c.who
  local today, week = gate_used(caps, c)
  local verdict, span = gate_verdict(c, today, week)
  if verdict ~= 'full' then return verdict, span end
  local held = gate_held_record(caps, c.channel)
  if held == nil or tonumber(held.priority) >= c.priority then return verdict, span end
  local release = tonumber(redis.call('ZSCORE', k.held, held.trigger_id) or '0')
  if release <= now then
    -- Released (or about to be): no longer held, so no longer anyone's to take.
    redis.call('HDEL', caps, c.channel .. ':held')
    return verdict, span
  end
  -- The counts without the held send's slot: on this day, or one of this week's.
  local its_day = tonumber(held.day)
  if its_day == c.cap_day then today = today - 1 end
  if its_day > c.cap_day - 7 and its_day <= c.cap_day then week = week - 1 end
  local freed, freed_span = gate_verdict(c, today, week)
  if freed == 'full' then return verdict, span end
  gate_give_up(k, c, held, now, log_size, window)
  return freed, freed_span
end

local function gate_prune(caps, day)
  if redis.call('HLEN', caps) <= GATE_FIELDS_KEPT then return end
  for _, field in ipairs(redis.call('HKEYS', caps)) do
    local parts = fields_of(field, ':')
    local its_day = tonumber(parts[2])
    if parts[2] ~= 'held' and (its_day == nil or its_day < day - 7) then
      redis.call('HDEL', caps, field)
    end
  end
end

-- The candidate takes a slot of its day; the one that takes the last is named, for those
-- capped after it.
local function gate_take(k, c, verdict)
  local caps = k.caps .. c.who
  local today = c.channel .. ':' .. c.cap_day
  if redis.call('HINCRBY', caps, today, 1) == 1 then gate_prune(caps, c.cap_day) end
  if verdict == 'last' then
    redis.call('HSET', caps, today .. ':by', c.priority .. SEP .. c.rule_id)
  end
  redis.call('EXPIRE', caps, GATE_TTL_S)
end

-- The candidate took the last slot and waits out the window in the held set: kept as the
-- channel's held send, with what giving it up must undo.
local function gate_hold(k, c, span, cooldown_before, counted)
  local record = {}
  local values = {trigger_id = c.trigger_id, priority = c.priority, rule = c.rule_id,
    day = c.cap_day, span = span, at = c.at_ms, cooldown_before = cooldown_before or '',
    goal = c.goal_key, goal_window = c.goal_window_ms, counted = counted}
  for i, name in ipairs(GATE_HELD) do record[i] = tostring(values[name]) end
  redis.call('HSET', k.caps .. c.who, c.channel .. ':held', table.concat(record, SEP))
end

-- Why a capped candidate was: who took the last slot of the spent cap (on its day, or the
-- latest within its week), added to what the caller wrote.
local function gate_capped_why(k, c, span)
  local caps = k.caps .. c.who
  local first = span == 'week' and c.cap_day - 6 or c.cap_day
  local fields = {}
  for day = c.cap_day, first, -1 do fields[#fields + 1] = c.channel .. ':' .. day .. ':by' end
  local takers = redis.call('HMGET', caps, unpack(fields))
  for _, taker in ipairs(takers) do
    if taker then
      local cut = string.find(taker, SEP, 1, true)
      local why = cjson.decode(c.why)
      why.capped_by = {rule = string.sub(taker, cut + 1),
        priority = tonumber(string.sub(taker, 1, cut - 1)), span = span}
      return cjson.encode(why)
    end
  end
  return c.why
end
