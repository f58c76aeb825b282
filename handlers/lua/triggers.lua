#!lua name=crmstream_triggers
--[[
Triggers: guards, the outbox, held (quiet-hours) triggers and conversions.

Every call works on one trigger shard: KEYS[1] is the shard's base
("<prefix>:{t<n>}:"), whose hash tag keeps all its keys in one Redis Cluster
slot; a customer always falls in the same shard. The first header argument lists
the key suffixes (handlers/keys.py TRIGGER_KEY_SUFFIXES), in this order:
outbox, held, held payloads, fired, cooldowns, caps, stats, open, goals, decision log,
phones, decisions per minute.
Per-customer keys are the shard's key plus the suffix plus "<shop>:<customer>".
Timers and decisions put off live with their partition instead (lua/timers.lua).

Because the dedup mark, the cooldown, the cap and the outbox entry are written by
one call, a trigger either exists completely or not at all: that is the outbox
half of delivery; the relay (streams/relay.py) is the other half.

handlers/scripts.py names the library and its functions with a digest of this file,
so workers of two versions never call each other's code during a rolling deploy.
]]

local S_OUTBOX, S_HELD, S_HELD_PAYLOADS, S_FIRED, S_COOLDOWNS, S_CAPS = 1, 2, 3, 4, 5, 6
local S_STATS, S_OPEN_GOALS, S_GOALS, S_DECISION_LOG, S_PHONES, S_MINUTES = 7, 8, 9, 10, 11, 12
local CAP_TTL_S = 3 * 86400 -- a local day, plus the widest timezone offsets, plus slack
local DAY_MS = 86400000
local SEP = '\31'

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

local function shard_keys(base, suffix_list)
  local keys = {}
  for i, suffix in ipairs(fields_of(suffix_list, ',')) do keys[i] = base .. suffix end
  return keys
end

local function to_outbox(keys, trigger_id, who, payload)
  redis.call('XADD', keys[S_OUTBOX], '*', 'id', trigger_id, 'key', who, 'event', payload)
end

-- Rule statistics, per shop and rule: "<shop>\31<rule>\31<outcome>" → how many.
local function count(keys, who, rule, outcome)
  local shop = string.sub(who, 1, string.find(who, ':', 1, true) - 1)
  redis.call('HINCRBY', keys[S_STATS], shop .. SEP .. rule .. SEP .. outcome, 1)
end

-- A guard held this occurrence back: counted once, however often it is decided again.
local function suppressed(keys, fired, who, rule, trigger_id, at, reason)
  if redis.call('ZADD', fired, 'NX', at, reason .. ':' .. trigger_id) == 1 then
    count(keys, who, rule, reason)
    return true
  end
  return false
end

-- A customer's caps are one hash ("<channel>:<local day>" → sent), so that an erasure
-- finds them all. Once it holds more than eight, the days before this one go (ISO days
-- sort as text).
local function prune_caps(cap_key, day)
  if redis.call('HLEN', cap_key) <= 8 then return end
  local fields = redis.call('HKEYS', cap_key)
  for _, field in ipairs(fields) do
    local its_day = string.sub(field, string.find(field, ':', 1, true) + 1)
    if its_day < day then redis.call('HDEL', cap_key, field) end
  end
end

local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

-- A trigger that went out (or was held out) waits for its goal: converted at once if a
-- goal event within its window is already known (events are not always read in order),
-- else left open for one to come (see goals).
local function attribute(keys, who, rule, trigger_id, at, goal, window, group)
  local known = redis.call('ZRANGE', keys[S_GOALS] .. who, '(' .. at, at + window, 'BYSCORE')
  for _, member in ipairs(known) do
    if string.sub(member, 1, #goal + 1) == goal .. SEP then
      count(keys, who, rule, group == 'h' and 'converted_holdout' or 'converted')
      return
    end
  end
  local open = keys[S_OPEN_GOALS] .. who
  redis.call('ZADD', open, at, table.concat({rule, goal, window, group, trigger_id}, SEP))
  keep_for(open, window + DAY_MS)
end

-- A customer's last decisions, newest first, each "<outcome> US <decided at, ms> US <why>"
-- (why: JSON of rule, version, time, trigger id, causes and reason, written by the
-- caller); at most `size`, kept as long as the fired ids.
local function log_decision(keys, who, outcome, now, why, size, window)
  if size <= 0 then return end
  local log = keys[S_DECISION_LOG] .. who
  local length = redis.call('LPUSH', log, outcome .. SEP .. now .. SEP .. why)
  -- Trimmed and given its lifetime only when it needs it: most decisions pay one command.
  if length > size then redis.call('LTRIM', log, 0, size - 1) end
  if length == 1 then redis.call('PEXPIRE', log, window) end
end

-- Decisions per shop, rule, outcome and minute, one hash per shop and hour, kept a day
-- and a little more: the console's charts.
local function count_minute(keys, who, rule, outcome, now)
  local shop = string.sub(who, 1, string.find(who, ':', 1, true) - 1)
  local minute = math.floor(now / 60000)
  local key = keys[S_MINUTES] .. shop .. ':' .. math.floor(minute / 60)
  if redis.call('HINCRBY', key, rule .. SEP .. outcome .. SEP .. (minute % 60), 1) == 1 then
    redis.call('EXPIRE', key, 26 * 3600, 'NX')
  end
end

-- KEYS: shard base. ARGV: fired window (ms), suffixes, now (ms, when this is decided),
-- decisions kept per customer, then 15 fields per candidate (handlers/triggers/decide.py
-- Candidate.args): trigger id, who ("shop:customer"), rule, at (ms, the occurrence's
-- time), cooldown (ms), channel ("" = consent refused it), cap day, cap (0 = none),
-- release at (ms, 0 = now), payload (the trigger's JSON),
-- holdout ("1": published as held out), goal (its key), goal window (ms),
-- expires at (ms, 0 = never: an occurrence decided later than this is not sent),
-- why (for the decision log).
-- Returns one status per candidate: sent, held, duplicate, expired, cooldown, capped,
-- skipped (consent).
local function emit(bases, args)
  local window = tonumber(args[1])
  local keys = shard_keys(bases[1], args[2])
  local now = tonumber(args[3])
  local log_size = tonumber(args[4])
  local statuses = {}
  for i = 5, #args, 15 do
    local trigger_id, who, rule = args[i], args[i + 1], args[i + 2]
    local at, cooldown = tonumber(args[i + 3]), tonumber(args[i + 4])
    local channel, day, cap = args[i + 5], args[i + 6], tonumber(args[i + 7])
    local release_at, payload = tonumber(args[i + 8]), args[i + 9]
    local holdout, goal, goal_window = args[i + 10] == '1', args[i + 11], tonumber(args[i + 12])
    local expires_at, why = tonumber(args[i + 13]), args[i + 14]
    local fired = keys[S_FIRED] .. who
    local cooldowns = keys[S_COOLDOWNS] .. who
    local status
    -- Whether this decision is news: the same outcome of the same occurrence (a redelivery,
    -- or another event of the occurrence) goes once into the log, the stats and the counts.
    local new = true
    if redis.call('ZSCORE', fired, trigger_id) then
      status, new = 'duplicate', false
    elseif expires_at > 0 and now > expires_at then
      -- Decided too late to be of use (a worker catching up after an outage): recorded.
      new = suppressed(keys, fired, who, rule, trigger_id, at, 'expired')
      status = 'expired'
    elseif channel == '' then
      new = suppressed(keys, fired, who, rule, trigger_id, at, 'consent')
      status = 'skipped'
    else
      local last = tonumber(redis.call('HGET', cooldowns, rule) or '')
      local cap_key, cap_field = keys[S_CAPS] .. who, channel .. ':' .. day
      if cooldown > 0 and last and at < last + cooldown and at > last - cooldown then
        new = suppressed(keys, fired, who, rule, trigger_id, at, 'cooldown')
        status = 'cooldown'
      elseif cap > 0 and (tonumber(redis.call('HGET', cap_key, cap_field) or '0')) >= cap then
        new = suppressed(keys, fired, who, rule, trigger_id, at, 'capped')
        status = 'capped'
      else
        if cap > 0 then
          if redis.call('HINCRBY', cap_key, cap_field, 1) == 1 then prune_caps(cap_key, day) end
          redis.call('EXPIRE', cap_key, CAP_TTL_S)
        end
        if not last or at > last then redis.call('HSET', cooldowns, rule, at) end
        if release_at > 0 then
          redis.call('ZADD', keys[S_HELD], release_at, trigger_id)
          redis.call('HSET', keys[S_HELD_PAYLOADS], trigger_id, who .. '\n' .. payload)
          status = 'held'
        else
          to_outbox(keys, trigger_id, who, payload)
          status = 'sent'
        end
        redis.call('ZADD', fired, at, trigger_id)
        redis.call('ZREMRANGEBYSCORE', fired, '-inf', '(' .. (at - window))
        if holdout then
          count(keys, who, rule, 'holdout')
        else
          count(keys, who, rule, status)
        end
        attribute(keys, who, rule, trigger_id, at, goal, goal_window, holdout and 'h' or 's')
      end
    end
    statuses[#statuses + 1] = status
    if new then
      local outcome = status == 'skipped' and 'consent' or status
      if holdout and (status == 'sent' or status == 'held') then outcome = 'holdout' end
      log_decision(keys, who, outcome, now, why, log_size, window)
      count_minute(keys, who, rule, outcome, now)
    end
  end
  return statuses
end

-- KEYS: shard base. ARGV: suffixes, now (ms), limit, decisions kept per customer, fired
-- window (ms). Held triggers whose quiet hours are over go to the outbox; returns how many.
local function release(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local now, limit = tonumber(args[2]), tonumber(args[3])
  local log_size, window = tonumber(args[4] or '0'), tonumber(args[5] or '0')
  local ids = redis.call('ZRANGE', keys[S_HELD], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, trigger_id in ipairs(ids) do
    local stored = redis.call('HGET', keys[S_HELD_PAYLOADS], trigger_id)
    if stored then
      local cut = string.find(stored, '\n', 1, true)
      local who = string.sub(stored, 1, cut - 1)
      to_outbox(keys, trigger_id, who, string.sub(stored, cut + 1))
      log_decision(keys, who, 'released', now, cjson.encode({trigger_id = trigger_id}), log_size, window)
    end
    redis.call('ZREM', keys[S_HELD], trigger_id)
    redis.call('HDEL', keys[S_HELD_PAYLOADS], trigger_id)
  end
  return #ids
end

-- KEYS: shard base. ARGV: suffixes, the widest goal window (ms), then 4 fields per goal
-- event: who, goal key, at (ms), event id. Each converts the open triggers of that goal
-- it falls within the window of (after the trigger, within its window), once: a goal
-- event seen before is skipped. Returns how many triggers converted.
local function goals(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local widest = tonumber(args[2])
  local converted = 0
  for i = 3, #args, 4 do
    local who, goal, at, event_id = args[i], args[i + 1], tonumber(args[i + 2]), args[i + 3]
    local known = keys[S_GOALS] .. who
    if redis.call('ZADD', known, 'NX', at, goal .. SEP .. event_id) == 1 then
      local open = keys[S_OPEN_GOALS] .. who
      local waiting = redis.call('ZRANGE', open, at - widest, '(' .. at, 'BYSCORE', 'WITHSCORES')
      for j = 1, #waiting, 2 do
        local parts = fields_of(waiting[j], SEP)
        local rule, its_goal, window, group = parts[1], parts[2], tonumber(parts[3]), parts[4]
        if its_goal == goal and tonumber(waiting[j + 1]) + window >= at then
          redis.call('ZREM', open, waiting[j])
          count(keys, who, rule, group == 'h' and 'converted_holdout' or 'converted')
          converted = converted + 1
        end
      end
      -- A trigger decided late (read behind) still finds the goal events of its window.
      redis.call('ZREMRANGEBYSCORE', known, '-inf', '(' .. (at - widest - DAY_MS))
      redis.call('ZREMRANGEBYSCORE', open, '-inf', '(' .. (at - widest - DAY_MS))
      keep_for(known, widest + 2 * DAY_MS)
    end
  end
  return converted
end

-- KEYS: shard base, then the shard's indexes that may hold who: first the sets (the
-- birthdays of every day, the registered), then the sorted sets (dormancy, delivery).
-- ARGV: suffixes, who ("shop:customer"), the relay's consumer group, how many of the
-- indexes are sets. An erasure: the customer's fired ids, cooldowns, caps and
-- conversion state go; so do their triggers held for quiet hours, those in the outbox
-- the relay has not read yet, and every index entry. Safe to repeat. Returns how many
-- triggers it withdrew.
local function erase(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local who, group = args[2], args[3]
  local fired = keys[S_FIRED] .. who
  local withdrawn = 0
  for _, trigger_id in ipairs(redis.call('ZRANGE', fired, 0, -1)) do
    withdrawn = withdrawn + redis.call('ZREM', keys[S_HELD], trigger_id)
    redis.call('HDEL', keys[S_HELD_PAYLOADS], trigger_id)
  end
  redis.call('DEL', fired, keys[S_COOLDOWNS] .. who, keys[S_CAPS] .. who, keys[S_OPEN_GOALS] .. who,
    keys[S_GOALS] .. who, keys[S_DECISION_LOG] .. who)
  local shop = string.sub(who, 1, string.find(who, ':', 1, true) - 1)
  local phone = redis.call('HGET', keys[S_PHONES], 'c' .. SEP .. who)
  if phone then
    redis.call('HDEL', keys[S_PHONES], shop .. SEP .. phone, 'c' .. SEP .. who)
  end
  if redis.call('EXISTS', keys[S_OUTBOX]) == 1 then
    local from = '-'
    for _, info in ipairs(redis.call('XINFO', 'GROUPS', keys[S_OUTBOX])) do
      for f = 1, #info, 2 do
        if info[f] == 'name' and info[f + 1] == group then
          for g = 1, #info, 2 do
            if info[g] == 'last-delivered-id' then from = '(' .. info[g + 1] end
          end
        end
      end
    end
    for _, entry in ipairs(redis.call('XRANGE', keys[S_OUTBOX], from, '+')) do
      local fields = entry[2]
      for f = 1, #fields, 2 do
        if fields[f] == 'key' and fields[f + 1] == who then
          withdrawn = withdrawn + redis.call('XDEL', keys[S_OUTBOX], entry[1])
        end
      end
    end
  end
  local sets = tonumber(args[4])
  for i = 2, #bases do
    redis.call(i <= sets + 1 and 'SREM' or 'ZREM', bases[i], who)
  end
  return withdrawn
end

-- KEYS: shard base. ARGV: suffixes, then pairs of who ("shop:customer"), phone hash.
-- The phone index: a customer found by the keyed hash of their phone, the previous
-- number of theirs forgotten.
local function index_phones(bases, args)
  local keys = shard_keys(bases[1], args[1])
  for i = 2, #args, 2 do
    local who, phone = args[i], args[i + 1]
    local cut = string.find(who, ':', 1, true)
    local shop, customer = string.sub(who, 1, cut - 1), string.sub(who, cut + 1)
    local previous = redis.call('HGET', keys[S_PHONES], 'c' .. SEP .. who)
    if previous and previous ~= phone then
      redis.call('HDEL', keys[S_PHONES], shop .. SEP .. previous)
    end
    redis.call('HSET', keys[S_PHONES], shop .. SEP .. phone, customer, 'c' .. SEP .. who, phone)
  end
  return (#args - 1) / 2
end

redis.register_function('crm_emit', emit)
redis.register_function('crm_phones', index_phones)
redis.register_function('crm_erase', erase)
redis.register_function('crm_goals', goals)
redis.register_function('crm_release', release)
