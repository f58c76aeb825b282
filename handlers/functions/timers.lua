-- A partition's timing (handlers/functions/timers.py): absence timers, the decisions put
-- off while a worker was behind, and the arms and cancels waiting for event time.
--
-- The keys, all of one partition (handlers/keys.py PartitionKeys):
--   timers    sorted set: absence timer → deadline (ms); a journey's event → its time,
--             and the end of a journey instance's wait → when
--   payloads  hash: timer, or entry put off → its value; ARMED_MARK .. timer → the
--             newest arming time applied to that timer (so a repeated arm changes nothing)
--   later     sorted set: on-event decisions put off → event time (ms)
--   taken     sorted set: due entries handed to the walker, until it is done with them
--   walker    string: the worker walking this partition for now
--   offsets   hash: topic → the next offset the partition's state reflects
--             (offsets.lua): a walk checks it before it decides anything
--   ops       sorted set: arms, cancels and erasures → event time (ms). Every one waits
--             here until its partition's event time passes it, and is applied in its
--             turn: the five topics are read at their own pace, and an arm and a cancel
--             must meet in the order they happened, not the order read.
-- An entry's name starts with what it is (ENTRY); a timer's value is
-- "<deadline>\n<armed at>\n<what armed it, JSON>".

local function deadline_and_armed_at(stored)
  local first = string.find(stored, '\n', 1, true)
  local second = string.find(stored, '\n', first + 1, true)
  return tonumber(string.sub(stored, 1, first - 1)), tonumber(string.sub(stored, first + 1, second - 1))
end

local function drop(k, member)
  redis.call('ZREM', k.timers, member)
  redis.call('ZREM', k.later, member)
  redis.call('ZREM', k.ops, member)
  redis.call('ZREM', k.taken, member)
  redis.call('HDEL', k.payloads, member)
end

-- An event that arms: a timer already due by the time of this event is kept under its own
-- name (member, US, deadline) to fire as it stands, and the event arms afresh; a pending one
-- moves to this event if the rule rearms, and stays as it is if not.
local function arm_timer(k, member, value, rearm)
  local deadline, armed_at = deadline_and_armed_at(value)
  -- An arm no later than the newest one applied was applied already: the same event
  -- delivered again, after the order that cancelled its timer perhaps. It changes nothing.
  local mark = NAMES.ARMED_MARK .. member
  local newest = tonumber(redis.call('HGET', k.payloads, mark) or '')
  if newest and armed_at <= newest then return end
  redis.call('HSET', k.payloads, mark, armed_at)
  local stored = redis.call('HGET', k.payloads, member)
  if stored then
    local current = deadline_and_armed_at(stored)
    if current < armed_at then
      local due_member = member .. NAMES.SEPARATOR .. current
      -- A timer a walk has already taken stays taken under its due name: that walk decides
      -- it (done strikes the due name off), and only a walker that died first sees it again.
      local taken = redis.call('ZSCORE', k.taken, member)
      redis.call('ZADD', taken and k.taken or k.timers, current, due_member)
      redis.call('HSET', k.payloads, due_member, stored)
      drop(k, member)
      stored = false
    end
  end
  if not stored or (rearm == '1' and deadline > deadline_and_armed_at(stored)) then
    redis.call('ZADD', k.timers, deadline, member)
    redis.call('HSET', k.payloads, member, value)
  end
end

-- An event that cancels: only a timer it falls within the window of (armed at .. deadline).
local function cancel_timer(k, member, at)
  local stored = redis.call('HGET', k.payloads, member)
  if stored then
    local deadline, armed_at = deadline_and_armed_at(stored)
    if armed_at <= at and at <= deadline then
      drop(k, member)
      return 1
    end
  end
  return 0
end

local function kind_of(member)
  return string.sub(member, 1, 1)
end

local function arm(keys, args)
  local call = read_call(ARM, keys, args)
  for n = 1, call.count do
    local entry = read_item(ARM, keys, args, n)
    local kind = kind_of(entry.member)
    local set = call.timers
    if kind == ENTRY.OP then set = call.ops elseif kind == ENTRY.PUT_OFF then set = call.later end
    redis.call('ZADD', set, entry.at_ms, entry.member)
    redis.call('HSET', call.payloads, entry.member, entry.value)
  end
  return reply(COUNT, {count = call.count})
end

-- An Op's value: its kind, the timer, then what the kind needs (timers.py Op); the timer
-- value holds newlines itself, so only the first three split. Returns how many timers it
-- took away (a cancel's).
local function apply_put_off(k, value)
  local op_end = string.find(value, '\n', 1, true)
  local member_end = string.find(value, '\n', op_end + 1, true)
  local op, member = string.sub(value, 1, op_end - 1), string.sub(value, op_end + 1, member_end - 1)
  if op == OP.ARM then
    local rearm_end = string.find(value, '\n', member_end + 1, true)
    arm_timer(k, member, string.sub(value, rearm_end + 1), string.sub(value, member_end + 1, rearm_end - 1))
    return 0
  elseif op == OP.ERASE then
    drop(k, member)
    redis.call('HDEL', k.payloads, NAMES.ARMED_MARK .. member)
    return 0
  elseif op == OP.CANCEL then
    return cancel_timer(k, member, tonumber(string.sub(value, member_end + 1)))
  end
  error('crm_due: an op of no kind: ' .. op)
end

-- The earliest entry of a sorted set due by now: member, score (or nil).
local function earliest(key, now)
  local first = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
  if #first == 0 then return nil, nil end
  return first[1], tonumber(first[2])
end

-- A Redis that lost recent writes (a crash under appendfsync everysec, a failover to a
-- lagging replica) holds older offsets than the walker recorded: its timers may be ones
-- that a lost cancel had taken away. True when Redis holds at least as much of each.
local function state_holds(call, keys, args)
  for n = 1, call.count do
    local fence = read_item(DUE, keys, args, n)
    if fence.offset ~= '' then
      local held = tonumber(redis.call('HGET', call.offsets, fence.topic) or '')
      if held == nil or held < tonumber(fence.offset) then return false end
    end
  end
  return true
end

-- Walks what is due in event-time order, one entry at a time, up to the limit, from the
-- arms and cancels, the decisions put off and the absence timers; at equal times in
-- that order:
-- - an OP entry is applied here, in its turn, so a cancel that travelled on a slower
--   topic still beats the deadline, and an arm read after a later cancel still meets it;
-- - PUT_OFF and ABSENCE entries go back to the caller, moved aside (taken) until it is
--   done with them (see done). The next walk starts by putting back whatever is still
--   taken: the worker died between the two; trigger ids make a second decision harmless.
-- One walker at a time, holding the partition while it comes back within hold_ms: the
-- owner lets go when a rebalance takes the partition (let_go), so its next owner need not
-- wait, and a worker that lost it without knowing is kept out meanwhile.
local function due(keys, args)
  local call = read_call(DUE, keys, args)
  local function waiting()
    return redis.call('ZCARD', call.later) + redis.call('ZCARD', call.taken)
  end
  local function walked(entries, cut_short, cancelled)
    return reply(DUE_REPLY, {entries = entries, cut_short = cut_short, state_lost = 0,
      waiting = waiting(), cancelled = cancelled})
  end
  if not state_holds(call, keys, args) then
    return reply(DUE_REPLY, {entries = {}, cut_short = 0, state_lost = 1,
      waiting = waiting(), cancelled = 0})
  end
  local holder = redis.call('GET', call.walker)
  if holder and holder ~= call.worker then return walked({}, 0, 0) end
  redis.call('SET', call.walker, call.worker, 'PX', call.hold_ms)
  local taken = redis.call('ZRANGE', call.taken, 0, -1, 'WITHSCORES')
  for i = 1, #taken, 2 do
    local set = kind_of(taken[i]) == ENTRY.PUT_OFF and call.later or call.timers
    redis.call('ZADD', set, taken[i + 1], taken[i])
  end
  redis.call('DEL', call.taken)
  local out, cut_short, cancelled = {}, 0, 0
  -- Each set's earliest entry due, read again only once that set may have changed: an
  -- entry handed back changes its own set; an op, itself and the timers it arms or cancels
  -- (a decision put off is never an op's timer).
  local OPS, LATER, TIMERS = 1, 2, 3
  local sets, heads = {call.ops, call.later, call.timers}, {}
  local function head(i)
    if heads[i] == nil then
      local member, at = earliest(sets[i], call.now_ms)
      heads[i] = member ~= nil and {member, at} or false
    end
    return heads[i]
  end
  for step = 1, call.limit do
    local chosen = nil
    for i = OPS, TIMERS do
      local candidate = head(i)
      if candidate and (chosen == nil or candidate[2] < heads[chosen][2]) then chosen = i end
    end
    if chosen == nil then break end
    local member, at = heads[chosen][1], heads[chosen][2]
    local value = redis.call('HGET', call.payloads, member) or ''
    if chosen == OPS then
      -- An op is kept in ops and payloads alone (arm, below).
      redis.call('ZREM', call.ops, member)
      redis.call('HDEL', call.payloads, member)
      if value ~= '' then cancelled = cancelled + apply_put_off(call, value) end
      heads[OPS], heads[TIMERS] = nil, nil
    else
      redis.call('ZREM', sets[chosen], member)
      redis.call('ZADD', call.taken, at, member)
      out[#out + 1] = reply(DUE_ENTRY, {member = member, value = value})
      heads[chosen] = nil
    end
    if step == call.limit then cut_short = 1 end
  end
  return walked(out, cut_short, cancelled)
end

-- Each decided entry goes, unless an arm has reused the name for a new timer since (its
-- deadline differs); and if an arm met it while the walker had it, what the walker decided
-- waits under its due name (see arm_timer): that goes too, whatever became of the new
-- timer since.
local function done(keys, args)
  local call = read_call(DONE, keys, args)
  local gone = 0
  for n = 1, call.count do
    local decided = read_item(DONE, keys, args, n)
    local member, at = decided.member, decided.at_ms
    local stored = redis.call('HGET', call.payloads, member)
    if not stored or deadline_and_armed_at(stored) == at then
      drop(call, member)
      gone = gone + 1
    end
    local due_member = member .. NAMES.SEPARATOR .. at
    if redis.call('ZSCORE', call.taken, due_member) then
      drop(call, due_member)
      gone = gone + 1
    end
  end
  return reply(COUNT, {count = gone})
end

local function let_go(keys, args)
  local call = read_call(LET_GO, keys, args)
  if redis.call('GET', call.walker) == call.worker then
    redis.call('DEL', call.walker)
    return reply(COUNT, {count = 1})
  end
  return reply(COUNT, {count = 0})
end

local function wake(keys, args)
  local call = read_call(WAKE, keys, args)
  local now, woken = call.now_ms, 0
  for n = 1, call.count do
    local member = read_item(WAKE, keys, args, n).member
    local at = tonumber(redis.call('ZSCORE', call.timers, member) or '')
    local stored = redis.call('HGET', call.payloads, member)
    if at and at > now and stored then
      local first = string.find(stored, '\n', 1, true)
      redis.call('HSET', call.payloads, member, now .. string.sub(stored, first))
      redis.call('ZADD', call.timers, now, member)
      woken = woken + 1
    end
  end
  return reply(COUNT, {count = woken})
end
