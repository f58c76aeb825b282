#!lua name=crmstream_triggers
--[[
Triggers: guards, the outbox, absence timers and held (quiet-hours) triggers.

Every call works on one trigger shard: KEYS[1] is the shard's base
("<prefix>:{t<n>}:"), whose hash tag keeps all its keys in one Redis Cluster
slot; a customer always falls in the same shard. The last header argument lists
the key suffixes (handlers/keys.py TRIGGER_KEY_SUFFIXES), in this order:
outbox, timers, timer payloads, held, held payloads, fired, cooldowns, caps, later,
walker, taken.
Per-customer keys are the shard's key plus the suffix plus "<shop>:<customer>".

Because the dedup mark, the cooldown, the cap and the outbox entry are written by
one call, a trigger either exists completely or not at all: that is the outbox
half of exactly-once; the relay (streams/relay.py) is the other half.
]]

local S_OUTBOX, S_TIMERS, S_TIMER, S_HELD, S_HELD_PAYLOAD, S_FIRED, S_COOLDOWN, S_CAP =
  1, 2, 3, 4, 5, 6, 7, 8
local S_LATER, S_WALKER, S_TAKEN, S_STATS, S_OPEN, S_GOALS = 9, 10, 11, 12, 13, 14
local CAP_TTL_S = 3 * 86400 -- a local day, plus the widest timezone offsets, plus slack
local DAY_MS = 86400000
local SEP = '\31'

local function split(text, sep)
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
  for i, suffix in ipairs(split(suffix_list, ',')) do keys[i] = base .. suffix end
  return keys
end

-- A timer's stored value: "<deadline>\n<armed at>\n<what armed it, JSON>".
local function timer_times(stored)
  local first = string.find(stored, '\n', 1, true)
  local second = string.find(stored, '\n', first + 1, true)
  return tonumber(string.sub(stored, 1, first - 1)), tonumber(string.sub(stored, first + 1, second - 1))
end

local function drop_timer(keys, member)
  redis.call('ZREM', keys[S_TIMERS], member)
  redis.call('ZREM', keys[S_LATER], member)
  redis.call('ZREM', keys[S_TAKEN], member)
  redis.call('HDEL', keys[S_TIMER], member)
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
  local open = keys[S_OPEN] .. who
  redis.call('ZADD', open, at, table.concat({rule, goal, window, group, trigger_id}, SEP))
  keep_for(open, window + DAY_MS)
end

-- KEYS: shard base. ARGV: fired window (ms), suffixes, then 14 fields per candidate:
-- trigger id, who ("shop:customer"), rule, at (ms, the occurrence's time), cooldown (ms),
-- channel ("" = consent refused it), cap day, cap (0 = none),
-- release at (ms, 0 = now), payload (the trigger's JSON), timer ("" = none; with no
-- trigger id, only the timer goes),
-- holdout ("1": published as held out), goal (its key), goal window (ms).
-- Returns one status per candidate: sent, held, duplicate, cooldown, capped, skipped.
local function emit(bases, args)
  local window = tonumber(args[1])
  local keys = shard_keys(bases[1], args[2])
  local statuses = {}
  for i = 3, #args, 14 do
    local trigger_id, who, rule = args[i], args[i + 1], args[i + 2]
    local at, cooldown = tonumber(args[i + 3]), tonumber(args[i + 4])
    local channel, day, cap = args[i + 5], args[i + 6], tonumber(args[i + 7])
    local release_at, payload, timer = tonumber(args[i + 8]), args[i + 9], args[i + 10]
    local holdout, goal, goal_window = args[i + 11] == '1', args[i + 12], tonumber(args[i + 13])
    local fired = keys[S_FIRED] .. who
    local cooldowns = keys[S_COOLDOWN] .. who
    local status
    if timer ~= '' then
      -- Only if it still is the timer this was decided from: an arm may have reused the
      -- name for a new one since (see arm_timer).
      local stored = redis.call('HGET', keys[S_TIMER], timer)
      if not stored or timer_times(stored) == at then drop_timer(keys, timer) end
    end
    if trigger_id == '' then
      status = 'skipped' -- only its timer was to go
    elseif redis.call('ZSCORE', fired, trigger_id) then
      status = 'duplicate'
    elseif channel == '' then
      suppressed(keys, fired, who, rule, trigger_id, at, 'consent')
      status = 'skipped'
    else
      local last = tonumber(redis.call('HGET', cooldowns, rule) or '')
      local cap_key = keys[S_CAP] .. who .. ':' .. channel .. ':' .. day
      if cooldown > 0 and last and at < last + cooldown and at > last - cooldown then
        suppressed(keys, fired, who, rule, trigger_id, at, 'cooldown')
        status = 'cooldown'
      elseif cap > 0 and (tonumber(redis.call('GET', cap_key) or '0')) >= cap then
        suppressed(keys, fired, who, rule, trigger_id, at, 'capped')
        status = 'capped'
      else
        if cap > 0 then
          redis.call('INCR', cap_key)
          redis.call('EXPIRE', cap_key, CAP_TTL_S)
        end
        if not last or at > last then redis.call('HSET', cooldowns, rule, at) end
        if release_at > 0 then
          redis.call('ZADD', keys[S_HELD], release_at, trigger_id)
          redis.call('HSET', keys[S_HELD_PAYLOAD], trigger_id, who .. '\n' .. payload)
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
  end
  return statuses
end

-- An event that arms: a timer already due by the time of this event is kept under its own
-- name (member, US, deadline) to fire as it stands, and the event arms afresh; a pending one
-- moves to this event if the rule rearms, and stays as it is if not.
local function arm_timer(keys, member, value, rearm)
  local deadline, armed_at = timer_times(value)
  local stored = redis.call('HGET', keys[S_TIMER], member)
  if stored then
    local current = timer_times(stored)
    if current < armed_at then
      local due_member = member .. '\31' .. current
      redis.call('ZADD', keys[S_TIMERS], current, due_member)
      redis.call('HSET', keys[S_TIMER], due_member, stored)
      drop_timer(keys, member)
      stored = false
    end
  end
  if not stored or (rearm == '1' and deadline > timer_times(stored)) then
    redis.call('ZADD', keys[S_TIMERS], deadline, member)
    redis.call('HSET', keys[S_TIMER], member, value)
  end
end

-- An event that cancels: only a timer it falls within the window of (armed at .. deadline).
local function cancel_timer(keys, member, at)
  local stored = redis.call('HGET', keys[S_TIMER], member)
  if stored then
    local deadline, armed_at = timer_times(stored)
    if armed_at <= at and at <= deadline then
      drop_timer(keys, member)
      return 1
    end
  end
  return 0
end

-- KEYS: shard base. ARGV: suffixes, then operations in event-time order:
--   A, member, value, rearm (1/0)   an event that arms (value: see timer_times)
--   C, member, at                   an event that cancels
--   P, member, at, value            put off until event time passes "at" (see due)
-- Returns how many timers were cancelled.
local function arm(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local cancelled, i = 0, 2
  while i <= #args do
    local op = args[i]
    if op == 'A' then
      arm_timer(keys, args[i + 1], args[i + 2], args[i + 3])
      i = i + 4
    elseif op == 'C' then
      cancelled = cancelled + cancel_timer(keys, args[i + 1], tonumber(args[i + 2]))
      i = i + 3
    else
      redis.call('ZADD', keys[S_LATER], args[i + 2], args[i + 1])
      redis.call('HSET', keys[S_TIMER], args[i + 1], args[i + 3])
      i = i + 4
    end
  end
  return cancelled
end

-- The earliest entry of a sorted set due by now: member, score (or nil).
local function earliest(key, now)
  local first = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
  if #first == 0 then return nil, nil end
  return first[1], tonumber(first[2])
end

-- KEYS: shard base. ARGV: suffixes, now (ms), limit, walker, hold (ms).
-- Walks what is due in event-time order, one entry at a time, up to limit, taking from
-- the absence timers ("t…") and from what was put off while a worker was behind ("later":
-- "d…" arms and cancels, "e…" on-event decisions); at equal times, what was put off first:
-- - a "d" entry ("A\n<timer>\n<rearm>\n<value>" or "C\n<timer>\n<at>") is applied here, in
--   its turn, so a cancel that travelled on a slower topic still beats the deadline;
-- - "e" and "t" entries go back to the caller, moved aside ("taken") until it emits them,
--   which removes them. The next walk starts by putting back whatever is still taken: the
--   emit failed, or the worker died; its ids make a second emit harmless.
-- One worker walks a shard at a time, and keeps it while it comes back within hold (ms):
-- two walkers would emit one customer's triggers out of order (cooldowns, caps).
-- Returns {member, value, …, more, later}: more is 1 when the limit cut the walk short;
-- later, how many put-off entries the shard still holds (taken ones included).
local function due(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local now, limit, walker, hold_ms = tonumber(args[2]), tonumber(args[3]), args[4], args[5]
  local holder = redis.call('GET', keys[S_WALKER])
  if holder and holder ~= walker then
    return {0, redis.call('ZCARD', keys[S_LATER]) + redis.call('ZCARD', keys[S_TAKEN])}
  end
  redis.call('SET', keys[S_WALKER], walker, 'PX', hold_ms)
  local taken = redis.call('ZRANGE', keys[S_TAKEN], 0, -1, 'WITHSCORES')
  for i = 1, #taken, 2 do
    local set = string.byte(taken[i], 1) == 116 and keys[S_TIMERS] or keys[S_LATER] -- "t"
    redis.call('ZADD', set, taken[i + 1], taken[i])
  end
  redis.call('DEL', keys[S_TAKEN])
  local out, more = {}, 0
  for step = 1, limit do
    local put_off, put_off_at = earliest(keys[S_LATER], now)
    local timer, timer_at = earliest(keys[S_TIMERS], now)
    if put_off == nil and timer == nil then break end
    local member, set, at = timer, keys[S_TIMERS], timer_at
    if put_off ~= nil and (timer == nil or put_off_at <= timer_at) then
      member, set, at = put_off, keys[S_LATER], put_off_at
    end
    local value = redis.call('HGET', keys[S_TIMER], member) or ''
    if string.byte(member, 1) == 100 then -- "d"
      drop_timer(keys, member)
      local lines = split(value, '\n')
      if lines[1] == 'A' then
        arm_timer(keys, lines[2], table.concat(lines, '\n', 4), lines[3])
      else
        cancel_timer(keys, lines[2], tonumber(lines[3]))
      end
    else
      redis.call('ZREM', set, member)
      redis.call('ZADD', keys[S_TAKEN], at, member)
      out[#out + 1] = member
      out[#out + 1] = value
    end
    if step == limit then more = 1 end
  end
  out[#out + 1] = more
  out[#out + 1] = redis.call('ZCARD', keys[S_LATER]) + redis.call('ZCARD', keys[S_TAKEN])
  return out
end

-- KEYS: shard base. ARGV: suffixes, now (ms), limit. Held triggers whose quiet hours are
-- over go to the outbox; returns how many.
local function release(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local now, limit = tonumber(args[2]), tonumber(args[3])
  local ids = redis.call('ZRANGE', keys[S_HELD], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, trigger_id in ipairs(ids) do
    local stored = redis.call('HGET', keys[S_HELD_PAYLOAD], trigger_id)
    if stored then
      local cut = string.find(stored, '\n', 1, true)
      to_outbox(keys, trigger_id, string.sub(stored, 1, cut - 1), string.sub(stored, cut + 1))
    end
    redis.call('ZREM', keys[S_HELD], trigger_id)
    redis.call('HDEL', keys[S_HELD_PAYLOAD], trigger_id)
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
      local open = keys[S_OPEN] .. who
      local waiting = redis.call('ZRANGE', open, at - widest, '(' .. at, 'BYSCORE', 'WITHSCORES')
      for j = 1, #waiting, 2 do
        local parts = split(waiting[j], SEP)
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

redis.register_function('crm_emit', emit)
redis.register_function('crm_goals', goals)
redis.register_function('crm_arm', arm)
redis.register_function('crm_due', due)
redis.register_function('crm_release', release)
