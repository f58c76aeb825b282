#!lua name=crmstream_timers
--[[
Timing: absence timers and the decisions put off while a worker was behind.

Every call works on one partition's timing keys, all under the hash tag "{p<n>}":
a customer's events travel in partition n of every event topic, so what is due
for them depends on how far partition n has been read and nothing else. Only the
worker that owns the partition calls these (handlers/triggers/timers.py), and a
rebalance hands the keys over with the partition.

KEYS, in this order (handlers/keys.py PartitionKeys.walk_keys):
  1 timers    sorted set: absence timer → deadline (ms)
  2 payloads  hash: timer, or entry put off → its value; "h\31<timer>" → the newest
              arming time applied to that timer (so a repeated arm changes nothing)
  3 later     sorted set: on-event decisions put off → event time (ms)
  4 taken     sorted set: due entries handed to the walker, until it is done with them
  5 walker    string: the worker walking this partition for now
  6 offsets   hash: topic → the next offset the partition's state reflects
              (lua/offsets.lua): a walk checks it before it decides anything
  7 ops       sorted set: arms and cancels → event time (ms). Every one waits here
              until its partition's event time passes it, and is applied in its
              turn: the five topics are read at their own pace, and an arm and a
              cancel must meet in the order they happened, not the order read.

Three kinds of members (handlers/triggers/members.py): "t…" absence timers, "e…"
on-event decisions put off, "d…" arms and cancels (in ops; a version before it kept
them in later, and a walk still applies those). A timer's value is
"<deadline>\n<armed at>\n<what armed it, JSON>".

handlers/scripts.py names the library and its functions with a digest of this file,
so workers of two versions never call each other's code during a rolling deploy.
]]

local K_TIMERS, K_PAYLOADS, K_LATER, K_TAKEN, K_WALKER, K_OFFSETS, K_OPS = 1, 2, 3, 4, 5, 6, 7

local function deadline_and_armed_at(stored)
  local first = string.find(stored, '\n', 1, true)
  local second = string.find(stored, '\n', first + 1, true)
  return tonumber(string.sub(stored, 1, first - 1)), tonumber(string.sub(stored, first + 1, second - 1))
end

local function drop(keys, member)
  redis.call('ZREM', keys[K_TIMERS], member)
  redis.call('ZREM', keys[K_LATER], member)
  redis.call('ZREM', keys[K_OPS], member)
  redis.call('ZREM', keys[K_TAKEN], member)
  redis.call('HDEL', keys[K_PAYLOADS], member)
end

-- An event that arms: a timer already due by the time of this event is kept under its own
-- name (member, US, deadline) to fire as it stands, and the event arms afresh; a pending one
-- moves to this event if the rule rearms, and stays as it is if not.
local function arm_timer(keys, member, value, rearm)
  local deadline, armed_at = deadline_and_armed_at(value)
  -- An arm no later than the newest one applied was applied already: the same event
  -- delivered again, after the order that cancelled its timer perhaps. It changes nothing.
  local mark = 'h\31' .. member
  local newest = tonumber(redis.call('HGET', keys[K_PAYLOADS], mark) or '')
  if newest and armed_at <= newest then return end
  redis.call('HSET', keys[K_PAYLOADS], mark, armed_at)
  local stored = redis.call('HGET', keys[K_PAYLOADS], member)
  if stored then
    local current = deadline_and_armed_at(stored)
    if current < armed_at then
      local due_member = member .. '\31' .. current
      -- A timer a walk has already taken stays taken under its due name: that walk decides
      -- it (done strikes the due name off), and only a walker that died first sees it again.
      local taken = redis.call('ZSCORE', keys[K_TAKEN], member)
      redis.call('ZADD', taken and keys[K_TAKEN] or keys[K_TIMERS], current, due_member)
      redis.call('HSET', keys[K_PAYLOADS], due_member, stored)
      drop(keys, member)
      stored = false
    end
  end
  if not stored or (rearm == '1' and deadline > deadline_and_armed_at(stored)) then
    redis.call('ZADD', keys[K_TIMERS], deadline, member)
    redis.call('HSET', keys[K_PAYLOADS], member, value)
  end
end

-- An event that cancels: only a timer it falls within the window of (armed at .. deadline).
local function cancel_timer(keys, member, at)
  local stored = redis.call('HGET', keys[K_PAYLOADS], member)
  if stored then
    local deadline, armed_at = deadline_and_armed_at(stored)
    if armed_at <= at and at <= deadline then
      drop(keys, member)
      return 1
    end
  end
  return 0
end

-- ARGV: entries to put off, as triples of member, at (ms), value: each waits until the
-- partition's event time passes "at" (see due). A "d" member (an arm or a cancel) goes to
-- ops, an "e" member (an on-event decision) to later.
local function arm(keys, args)
  for i = 1, #args, 3 do
    local set = string.byte(args[i], 1) == 100 and keys[K_OPS] or keys[K_LATER] -- "d"
    redis.call('ZADD', set, args[i + 1], args[i])
    redis.call('HSET', keys[K_PAYLOADS], args[i], args[i + 2])
  end
  return 0
end

-- An arm, cancel or erasure's value: "A\n<timer>\n<rearm>\n<timer value>",
-- "C\n<timer>\n<at>" or "X\n<timer>\n". The timer value holds newlines itself: only the
-- first three split. Returns how many timers it took away (a cancel's).
local function apply_put_off(keys, value)
  local op_end = string.find(value, '\n', 1, true)
  local member_end = string.find(value, '\n', op_end + 1, true)
  local op, member = string.sub(value, 1, op_end - 1), string.sub(value, op_end + 1, member_end - 1)
  if op == 'A' then
    local rearm_end = string.find(value, '\n', member_end + 1, true)
    arm_timer(keys, member, string.sub(value, rearm_end + 1), string.sub(value, member_end + 1, rearm_end - 1))
    return 0
  elseif op == 'X' then
    drop(keys, member)
    redis.call('HDEL', keys[K_PAYLOADS], 'h\31' .. member)
    return 0
  end
  return cancel_timer(keys, member, tonumber(string.sub(value, member_end + 1)))
end

-- The earliest entry of a sorted set due by now: member, score (or nil).
local function earliest(key, now)
  local first = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
  if #first == 0 then return nil, nil end
  return first[1], tonumber(first[2])
end

-- A Redis that lost recent writes (a crash under appendfsync everysec, a failover to a
-- lagging replica) holds older offsets than the walker recorded: its timers may be ones
-- that a lost cancel had taken away. ARGV from first: pairs of topic, the offset the
-- walker last recorded ("" = none yet). True when Redis holds at least as much of each.
local function state_holds(keys, args, first)
  for i = first, #args, 2 do
    if args[i + 1] ~= '' then
      local held = tonumber(redis.call('HGET', keys[K_OFFSETS], args[i]) or '')
      if held == nil or held < tonumber(args[i + 1]) then return false end
    end
  end
  return true
end

-- ARGV: now (ms), limit, walker, hold (ms), then pairs of topic, offset (see state_holds).
-- Walks what is due in event-time order, one entry at a time, up to limit, from the arms
-- and cancels, the decisions put off and the absence timers; at equal times in that order:
-- - a "d" entry is applied here, in its turn, so a cancel that travelled on a slower
--   topic still beats the deadline, and an arm read after a later cancel still meets it;
-- - "e" and "t" entries go back to the caller, moved aside ("taken") until it is done
--   with them (see done). The next walk starts by putting back whatever is still taken:
--   the worker died between the two; trigger ids make a second decision harmless.
-- One walker at a time, holding the partition while it comes back within hold (ms): the
-- owner lets go when a rebalance takes the partition (let_go), so its next owner need
-- not wait, and a worker that lost it without knowing is kept out meanwhile.
-- Returns {member, value, …, more, later, cancelled}: more is 1 when the limit cut the
-- walk short, -1 when the state lost writes (nothing walked: the partition is to be read
-- again); later, how many decisions put off still wait (taken ones included); cancelled,
-- how many timers the cancels applied took away.
local function due(keys, args)
  local now, limit, walker, hold_ms = tonumber(args[1]), tonumber(args[2]), args[3], args[4]
  local function waiting()
    return redis.call('ZCARD', keys[K_LATER]) + redis.call('ZCARD', keys[K_TAKEN])
  end
  if not state_holds(keys, args, 5) then return {-1, waiting(), 0} end
  local holder = redis.call('GET', keys[K_WALKER])
  if holder and holder ~= walker then return {0, waiting(), 0} end
  redis.call('SET', keys[K_WALKER], walker, 'PX', hold_ms)
  local taken = redis.call('ZRANGE', keys[K_TAKEN], 0, -1, 'WITHSCORES')
  for i = 1, #taken, 2 do
    local set = string.byte(taken[i], 1) == 116 and keys[K_TIMERS] or keys[K_LATER] -- "t"
    redis.call('ZADD', set, taken[i + 1], taken[i])
  end
  redis.call('DEL', keys[K_TAKEN])
  local out, more, cancelled = {}, 0, 0
  for step = 1, limit do
    local member, set, at = nil, nil, nil
    for _, key in ipairs({keys[K_OPS], keys[K_LATER], keys[K_TIMERS]}) do
      local candidate, candidate_at = earliest(key, now)
      if candidate ~= nil and (at == nil or candidate_at < at) then
        member, set, at = candidate, key, candidate_at
      end
    end
    if member == nil then break end
    local value = redis.call('HGET', keys[K_PAYLOADS], member) or ''
    if string.byte(member, 1) == 100 then -- "d"
      drop(keys, member)
      if value ~= '' then cancelled = cancelled + apply_put_off(keys, value) end
    else
      redis.call('ZREM', set, member)
      redis.call('ZADD', keys[K_TAKEN], at, member)
      out[#out + 1] = member
      out[#out + 1] = value
    end
    if step == limit then more = 1 end
  end
  out[#out + 1] = more
  out[#out + 1] = waiting()
  out[#out + 1] = cancelled
  return out
end

-- ARGV: pairs of member, at (ms): entries the walker has decided (their triggers are in
-- the outbox, or were refused). Each goes, unless an arm has reused the name for a new
-- timer since (its deadline differs); and if an arm met it while the walker had it, what
-- the walker decided waits under its due name (see arm_timer): that goes too, whatever
-- became of the new timer since. Returns how many went.
local function done(keys, args)
  local gone = 0
  for i = 1, #args, 2 do
    local member, at = args[i], tonumber(args[i + 1])
    local stored = redis.call('HGET', keys[K_PAYLOADS], member)
    if not stored or deadline_and_armed_at(stored) == at then
      drop(keys, member)
      gone = gone + 1
    end
    local due_member = member .. '\31' .. args[i + 1]
    if redis.call('ZSCORE', keys[K_TAKEN], due_member) then
      drop(keys, due_member)
      gone = gone + 1
    end
  end
  return gone
end

-- ARGV: walker. The partition was taken from this worker: its next owner walks at once.
local function let_go(keys, args)
  if redis.call('GET', keys[K_WALKER]) == args[1] then
    redis.call('DEL', keys[K_WALKER])
    return 1
  end
  return 0
end

redis.register_function('crm_arm', arm)
redis.register_function('crm_due', due)
redis.register_function('crm_done', done)
redis.register_function('crm_let_go', let_go)
