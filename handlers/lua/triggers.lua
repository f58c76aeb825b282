#!lua name=crmstream_triggers
--[[
Triggers: guards, the outbox, absence timers and held (quiet-hours) triggers.

Every call works on one trigger shard: KEYS[1] is the shard's base
("<prefix>:{t<n>}:"), whose hash tag keeps all its keys in one Redis Cluster
slot; a customer always falls in the same shard. The last header argument lists
the key suffixes (handlers/keys.py TRIGGER_KEY_SUFFIXES), in this order:
outbox, timers, timer payloads, held, held payloads, fired, cooldowns, caps.
Per-customer keys are the shard's key plus the suffix plus "<shop>:<customer>".

Because the dedup mark, the cooldown, the cap and the outbox entry are written by
one call, a trigger either exists completely or not at all: that is the outbox
half of exactly-once; the relay (streams/relay.py) is the other half.
]]

local S_OUTBOX, S_TIMERS, S_TIMER, S_HELD, S_HELD_PAYLOAD, S_FIRED, S_COOLDOWN, S_CAP =
  1, 2, 3, 4, 5, 6, 7, 8
local CAP_TTL_S = 3 * 86400 -- a local day, plus the widest timezone offsets, plus slack

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
  redis.call('HDEL', keys[S_TIMER], member)
end

local function to_outbox(keys, trigger_id, who, payload)
  redis.call('XADD', keys[S_OUTBOX], '*', 'id', trigger_id, 'key', who, 'event', payload)
end

-- KEYS: shard base. ARGV: fired window (ms), suffixes, then 11 fields per candidate:
-- trigger id, who ("shop:customer"), rule, at (ms, the occurrence's time), cooldown (ms),
-- channel ("" = refused before: only its timer goes), cap day, cap (0 = none),
-- release at (ms, 0 = now), payload (the trigger's JSON), timer ("" = none).
-- Returns one status per candidate: sent, held, duplicate, cooldown, capped, skipped.
local function emit(bases, args)
  local window = tonumber(args[1])
  local keys = shard_keys(bases[1], args[2])
  local statuses = {}
  for i = 3, #args, 11 do
    local trigger_id, who, rule = args[i], args[i + 1], args[i + 2]
    local at, cooldown = tonumber(args[i + 3]), tonumber(args[i + 4])
    local channel, day, cap = args[i + 5], args[i + 6], tonumber(args[i + 7])
    local release_at, payload, timer = tonumber(args[i + 8]), args[i + 9], args[i + 10]
    local fired = keys[S_FIRED] .. who
    local cooldowns = keys[S_COOLDOWN] .. who
    local status
    if timer ~= '' then
      drop_timer(keys, timer)
    end
    if channel == '' then
      status = 'skipped'
    elseif redis.call('ZSCORE', fired, trigger_id) then
      status = 'duplicate'
    else
      local last = tonumber(redis.call('HGET', cooldowns, rule) or '')
      local cap_key = keys[S_CAP] .. who .. ':' .. channel .. ':' .. day
      if cooldown > 0 and last and at < last + cooldown and at > last - cooldown then
        status = 'cooldown'
      elseif cap > 0 and (tonumber(redis.call('GET', cap_key) or '0')) >= cap then
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
      end
    end
    statuses[#statuses + 1] = status
  end
  return statuses
end

-- KEYS: shard base. ARGV: suffixes, then operations in event-time order:
--   A, member, deadline, armed at, stored value, rearm (1/0): an event that arms;
--   C, member, at: an event that cancels the member's timer if it came within its window.
-- A timer whose deadline is already behind the arming event is due: it is kept under its
-- own name (member, US, deadline) to fire as it stands, and the event arms afresh.
-- Returns how many timers were cancelled.
local function arm(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local cancelled, i = 0, 2
  while i <= #args do
    local op, member = args[i], args[i + 1]
    local stored = redis.call('HGET', keys[S_TIMER], member)
    if op == 'A' then
      local deadline, armed_at, value, rearm = args[i + 2], tonumber(args[i + 3]), args[i + 4], args[i + 5]
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
      if not stored or (rearm == '1' and tonumber(deadline) > timer_times(stored)) then
        redis.call('ZADD', keys[S_TIMERS], deadline, member)
        redis.call('HSET', keys[S_TIMER], member, value)
      end
      i = i + 6
    else
      local at = tonumber(args[i + 2])
      if stored then
        local deadline, armed_at = timer_times(stored)
        if armed_at <= at and at <= deadline then
          drop_timer(keys, member)
          cancelled = cancelled + 1
        end
      end
      i = i + 3
    end
  end
  return cancelled
end

-- KEYS: shard base. ARGV: suffixes, now (ms), lease (ms), limit.
-- Due timers are leased, not removed: whoever takes them has until the lease ends to emit
-- (which removes them); if it dies, they come due again for another worker.
local function due(bases, args)
  local keys = shard_keys(bases[1], args[1])
  local now, lease, limit = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  local members = redis.call('ZRANGE', keys[S_TIMERS], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  local out = {}
  for _, member in ipairs(members) do
    redis.call('ZADD', keys[S_TIMERS], now + lease, member)
    out[#out + 1] = member
    out[#out + 1] = redis.call('HGET', keys[S_TIMER], member) or ''
  end
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

redis.register_function('crm_emit', emit)
redis.register_function('crm_arm', arm)
redis.register_function('crm_due', due)
redis.register_function('crm_release', release)
