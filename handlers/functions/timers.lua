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

-- One command for many members (ZADD's score, member pairs; HSET's field, value pairs),
-- in runs: unpack has a stack limit, and a walk or an arm may be long.
-- Returns the replies of a command that answers per member (HMGET, ZMSCORE), joined.
local RUN = 1000
local function in_runs(command, key, items)
  local replies = {}
  for first = 1, #items, RUN do
    local got = redis.call(command, key, unpack(items, first, math.min(first + RUN - 1, #items)))
    if type(got) == 'table' then
      for _, value in ipairs(got) do replies[#replies + 1] = value end
    end
  end
  return replies
end

-- Members out of every set of the partition, and their values.
local function drop_all(k, members)
  if #members == 0 then return end
  in_runs('ZREM', k.timers, members)
  in_runs('ZREM', k.later, members)
  in_runs('ZREM', k.ops, members)
  in_runs('ZREM', k.taken, members)
  in_runs('HDEL', k.payloads, members)
end

local function drop(k, member)
  drop_all(k, {member})
end

-- An event that arms: a timer already due by the time of this event is kept under its own
-- name (member, US, deadline) to fire as it stands, and the event arms afresh; a pending one
-- moves to this event if the rule rearms, and stays as it is if not. Returns whether a timer
-- due by the walk's now came or went (what the walk read ahead of timers no longer holds).
local function arm_timer(k, member, value, rearm)
  local deadline, armed_at = deadline_and_armed_at(value)
  -- An arm no later than the newest one applied was applied already: the same event
  -- delivered again, after the order that cancelled its timer perhaps. It changes nothing.
  local mark = NAMES.ARMED_MARK .. member
  local newest = tonumber(redis.call('HGET', k.payloads, mark) or '')
  if newest and armed_at <= newest then return false end
  local now, moved_due = k.now_ms, false
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
      moved_due = current <= now
    end
  end
  if not stored or (rearm == '1' and deadline > deadline_and_armed_at(stored)) then
    redis.call('ZADD', k.timers, deadline, member)
    redis.call('HSET', k.payloads, member, value)
    moved_due = moved_due or deadline <= now or (stored and deadline_and_armed_at(stored) <= now)
  end
  return moved_due
end

-- An event that cancels: only a timer it falls within the window of (armed at .. deadline).
-- Returns how many it took (0 or 1), and whether that one was due by the walk's now.
local function cancel_timer(k, member, at)
  local stored = redis.call('HGET', k.payloads, member)
  if stored then
    local deadline, armed_at = deadline_and_armed_at(stored)
    if armed_at <= at and at <= deadline then
      drop(k, member)
      return 1, deadline <= k.now_ms
    end
  end
  return 0, false
end

local function kind_of(member)
  return string.sub(member, 1, 1)
end

local function arm(keys, args)
  local call = read_call(ARM, keys, args)
  -- Each set's (time, member) pairs and every (member, value), in the order given: a member
  -- given twice ends as its last, as it would one command at a time.
  local timers, ops, later, payloads = {}, {}, {}, {}
  for n = 1, call.count do
    local entry = read_item(ARM, keys, args, n)
    local member = entry.member
    local kind = kind_of(member)
    local set = timers
    if kind == ENTRY.OP then set = ops elseif kind == ENTRY.PUT_OFF then set = later end
    set[#set + 1] = entry.at_ms
    set[#set + 1] = member
    payloads[#payloads + 1] = member
    payloads[#payloads + 1] = entry.value
  end
  in_runs('ZADD', call.timers, timers)
  in_runs('ZADD', call.ops, ops)
  in_runs('ZADD', call.later, later)
  in_runs('HSET', call.payloads, payloads)
  return reply(COUNT, {count = call.count})
end

-- An Op's value: its kind, the timer, then what the kind needs (timers.py Op); the timer
-- value holds newlines itself, so only the first three split. Returns how many timers it
-- took away (a cancel's), and whether a timer due by the walk's now came or went.
local function apply_put_off(k, value)
  local op_end = string.find(value, '\n', 1, true)
  local member_end = string.find(value, '\n', op_end + 1, true)
  local op, member = string.sub(value, 1, op_end - 1), string.sub(value, op_end + 1, member_end - 1)
  if op == OP.ARM then
    local rearm_end = string.find(value, '\n', member_end + 1, true)
    return 0, arm_timer(
      k, member, string.sub(value, rearm_end + 1), string.sub(value, member_end + 1, rearm_end - 1))
  elseif op == OP.ERASE then
    drop(k, member)
    redis.call('HDEL', k.payloads, NAMES.ARMED_MARK .. member)
    return 0, true
  elseif op == OP.CANCEL then
    return cancel_timer(k, member, tonumber(string.sub(value, member_end + 1)))
  end
  error('crm_due: an op of no kind: ' .. op)
end

-- The first `count` entries of a sorted set due by now, in order: {members, scores,
-- next = the first not yet walked, full = whether there may be more}; their values are
-- read once one of them is walked (value_of).
local READ_AHEAD = 64
local function Ahead(key, now, count)
  local got = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
  local members, scores = {}, {}
  for i = 1, #got, 2 do
    members[#members + 1] = got[i]
    scores[#scores + 1] = tonumber(got[i + 1])
  end
  return {members = members, scores = scores, next = 1, full = #members == count}
end

local function value_of(read, index, payloads)
  if read.values == nil then read.values = redis.call('HMGET', payloads, unpack(read.members)) end
  return read.values[index] or ''
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
  local OPS, LATER, TIMERS = 1, 2, 3
  local sets = {call.ops, call.later, call.timers}
  -- Each set's entries due, read ahead (Ahead). Nothing but this walk changes ops or later
  -- meanwhile, and it only takes from them, so what was read of them holds; timers is read
  -- again after an op that brought or took a timer due by now, one entry at first and more
  -- while no such op comes between.
  local ahead, wanted = {}, {1, 1, 1}
  -- What the walk took, written once (moved): entries handed back leave their set for
  -- taken; ops applied leave ops and their values.
  local handed, to_taken, applied = {{}, {}, {}}, {}, {}
  local function move_handed()
    if #to_taken == 0 then return end
    in_runs('ZREM', call.later, handed[LATER])
    in_runs('ZREM', call.timers, handed[TIMERS])
    in_runs('ZADD', call.taken, to_taken)
    handed[LATER], handed[TIMERS], to_taken = {}, {}, {}
  end
  local function move_applied()
    if #applied == 0 then return end
    in_runs('ZREM', call.ops, applied)
    in_runs('HDEL', call.payloads, applied)
    applied = {}
  end
  local function head(i)
    local read = ahead[i]
    if read == nil or (read.next > #read.members and read.full) then
      -- What this walk took from the set goes first, or it would be read again.
      if i == OPS then move_applied() else move_handed() end
      read = Ahead(sets[i], call.now_ms, wanted[i])
      ahead[i] = read
      wanted[i] = math.min(wanted[i] * 4, READ_AHEAD)
    end
    return read.next <= #read.members and read or nil
  end
  for step = 1, call.limit do
    local chosen, chosen_at = nil, nil
    for i = OPS, TIMERS do
      local read = head(i)
      if read and (chosen == nil or read.scores[read.next] < chosen_at) then
        chosen, chosen_at = i, read.scores[read.next]
      end
    end
    if chosen == nil then break end
    local read = ahead[chosen]
    local member, value = read.members[read.next], value_of(read, read.next, call.payloads)
    read.next = read.next + 1
    if chosen == OPS then
      applied[#applied + 1] = member
      if value ~= '' then
        -- The op reads and changes timers, taken and payloads as they stand by now.
        move_handed()
        local took, moved_due = apply_put_off(call, value)
        cancelled = cancelled + took
        if moved_due then ahead[TIMERS], wanted[TIMERS] = nil, 1 end
      end
    else
      handed[chosen][#handed[chosen] + 1] = member
      to_taken[#to_taken + 1] = chosen_at
      to_taken[#to_taken + 1] = member
      out[#out + 1] = reply(DUE_ENTRY, {member = member, value = value})
    end
    if step == call.limit then cut_short = 1 end
  end
  move_handed()
  move_applied()
  return walked(out, cut_short, cancelled)
end

-- Each decided entry goes, unless an arm has reused the name for a new timer since (its
-- deadline differs); and if an arm met it while the walker had it, what the walker decided
-- waits under its due name (see arm_timer): that goes too, whatever became of the new
-- timer since.
local function done(keys, args)
  local call = read_call(DONE, keys, args)
  if call.count == 0 then return reply(COUNT, {count = 0}) end
  local members, due_members, ats = {}, {}, {}
  for n = 1, call.count do
    local decided = read_item(DONE, keys, args, n)
    members[n], ats[n] = decided.member, decided.at_ms
    due_members[n] = decided.member .. NAMES.SEPARATOR .. decided.at_ms
  end
  -- Read before anything goes: a walk hands over each name once, and a due name is never
  -- another entry's name, so no drop below changes what another entry reads.
  local stored = in_runs('HMGET', call.payloads, members)
  local taken = in_runs('ZMSCORE', call.taken, due_members)
  local gone = {}
  for n = 1, call.count do
    if not stored[n] or deadline_and_armed_at(stored[n]) == ats[n] then gone[#gone + 1] = members[n] end
    if taken[n] then gone[#gone + 1] = due_members[n] end
  end
  drop_all(call, gone)
  return reply(COUNT, {count = #gone})
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
