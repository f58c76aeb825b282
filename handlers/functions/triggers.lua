-- Triggers (handlers/functions/triggers.py): what emit, release, goals and erase share.
-- `k` is a shard's keys by name (keys_under(call.shard, TRIGGER_KEYS)); a per-customer
-- key continues with "<shop>:<customer>".

local DAY_MS = 86400000
local SEP = NAMES.SEPARATOR

local function to_outbox(k, trigger_id, who, payload)
  redis.call('XADD', k.outbox, '*', 'id', trigger_id, 'key', who, 'event', payload)
end

local function shop_of(who)
  return string.sub(who, 1, string.find(who, ':', 1, true) - 1)
end

-- Rule statistics, per shop and rule: "<shop> US <rule> US <outcome>" → how many.
local function count(k, who, rule, outcome)
  redis.call('HINCRBY', k.stats, shop_of(who) .. SEP .. rule .. SEP .. outcome, 1)
end

-- A guard held this occurrence back: counted once, however often it is decided again.
-- True when this is the first time (the decision is news).
local function suppressed(k, fired, who, rule, trigger_id, at, reason)
  if redis.call('ZADD', fired, 'NX', at, reason .. NAMES.SUPPRESSED_MARK .. trigger_id) == 1 then
    count(k, who, rule, reason)
    return true
  end
  return false
end

local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

-- A trigger that went out (or was held out) waits for its goal: converted at once if a
-- goal event within its window is already known (events are not always read in order),
-- else left open for one to come (see goals).
local function attribute(k, who, rule, trigger_id, at, goal, window, group)
  local known = redis.call('ZRANGE', k.goals .. who, '(' .. at, at + window, 'BYSCORE')
  for _, member in ipairs(known) do
    if string.sub(member, 1, #goal + 1) == goal .. SEP then
      count(k, who, rule, group == 'h' and COUNTED.CONVERTED_HOLDOUT or COUNTED.CONVERTED)
      return
    end
  end
  local open = k.open_goals .. who
  redis.call('ZADD', open, at, table.concat({rule, goal, window, group, trigger_id}, SEP))
  keep_for(open, window + DAY_MS)
end

-- A customer's last decisions, newest first, each "<outcome> US <decided at, ms> US <why>"
-- (why: JSON of rule, version, time, trigger id, causes and reason, written by the
-- caller); at most `size`, kept as long as the fired ids.
local function log_decision(k, who, outcome, now, why, size, window)
  if size <= 0 then return end
  local log = k.decision_log .. who
  local length = redis.call('LPUSH', log, outcome .. SEP .. now .. SEP .. why)
  -- Trimmed and given its lifetime only when it needs it: most decisions pay one command.
  if length > size then redis.call('LTRIM', log, 0, size - 1) end
  if length == 1 then redis.call('PEXPIRE', log, window) end
end

-- Decisions per shop, rule, outcome and minute, one hash per shop and hour, kept a day
-- and a little more: the console's charts.
local function count_minute(k, who, rule, outcome, now)
  local minute = math.floor(now / 60000)
  local key = k.minutes .. shop_of(who) .. ':' .. math.floor(minute / 60)
  if redis.call('HINCRBY', key, rule .. SEP .. outcome .. SEP .. (minute % 60), 1) == 1 then
    redis.call('EXPIRE', key, 26 * 3600, 'NX')
  end
end
