-- The guards and the outbox: emit decides candidates, release sends what quiet hours held.

-- The guards for one candidate (a rule's trigger, or a journey's send: journeys.lua):
-- dedup by occurrence, max_age, consent, cooldown, the send gate's caps (gate.lua), then
-- quiet hours and the gate's window. Returns its DECISION; the decision log and the
-- minute counts have it when it is news.
local function guard(k, c, now, window, log_size)
  local who, rule, at, trigger_id = c.who, c.rule_id, c.at_ms, c.trigger_id
  local fired = k.fired .. who
  local cooldowns = k.cooldowns .. who
  local status
  local why = c.why
  -- Whether this decision is news: the same outcome of the same occurrence (a redelivery,
  -- or another event of the occurrence) goes once into the log, the stats and the counts.
  local new = true
  if redis.call('ZSCORE', fired, trigger_id) then
    status, new = DECISION.DUPLICATE, false
  elseif c.expires_at_ms > 0 and now > c.expires_at_ms then
    -- Decided too late to be of use (a worker catching up after an outage): recorded.
    new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.EXPIRED)
    status = DECISION.EXPIRED
  elseif c.channel == '' then
    new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.CONSENT)
    status = DECISION.SKIPPED
  else
    local last = redis.call('HGET', cooldowns, rule)
    local last_at = tonumber(last or '')
    local cooldown = c.cooldown_ms
    local verdict, span = 'open', nil
    if cooldown > 0 and last_at and at < last_at + cooldown and at > last_at - cooldown then
      new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.COOLDOWN)
      status = DECISION.COOLDOWN
    else
      if c.cap_day > 0 then verdict, span = gate_claim(k, c, now, log_size, window) end
      if verdict == 'full' then
        new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.CAPPED)
        status = DECISION.CAPPED
        if new then why = gate_capped_why(k, c, span) end
      end
    end
    if status == nil then
      if c.cap_day > 0 then gate_take(k, c, verdict) end
      if not last_at or at > last_at then redis.call('HSET', cooldowns, rule, at) end
      -- The last slot waits out the shop's window, for a better claim on it.
      local gated = verdict == 'last' and c.gate_window_ms > 0
      local release = c.release_at_ms
      if gated then release = math.max(release, now + c.gate_window_ms) end
      if release > 0 then
        redis.call('ZADD', k.held, release, trigger_id)
        redis.call('HSET', k.held_payloads, trigger_id, who .. '\n' .. c.payload)
        status = DECISION.HELD
      else
        to_outbox(k, trigger_id, who, c.payload)
        status = DECISION.SENT
      end
      redis.call('ZADD', fired, at, trigger_id)
      redis.call('ZREMRANGEBYSCORE', fired, '-inf', '(' .. (at - window))
      local counted = c.holdout and LOGGED.HOLDOUT or status
      count(k, who, rule, counted)
      attribute(k, who, rule, trigger_id, at, c.goal_key, c.goal_window_ms, c.holdout and 'h' or 's')
      if gated then
        gate_hold(k, c, span, last, counted)
        local told = cjson.decode(why)
        told.release_at = release
        told.gate = {priority = c.priority, span = span}
        why = cjson.encode(told)
      end
    end
  end
  if new then
    local outcome = status == DECISION.SKIPPED and LOGGED.CONSENT or status
    if c.holdout and (status == DECISION.SENT or status == DECISION.HELD) then
      outcome = LOGGED.HOLDOUT
    end
    log_decision(k, who, outcome, now, why, log_size, window)
    count_minute(k, who, rule, outcome, now)
  end
  return status
end

-- One decision per candidate, in order.
local function emit(keys, args)
  local call = read_call(EMIT, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  local decisions = {}
  for n = 1, call.count do
    local c = read_item(EMIT, keys, args, n)
    decisions[n] = guard(k, c, call.now_ms, call.fired_window_ms, call.log_size)
  end
  return reply(EMIT_REPLY, {decisions = decisions})
end

-- Held triggers whose quiet hours are over go to the outbox, each logged as released.
local function release(keys, args)
  local call = read_call(RELEASE, keys, args)
  local k = keys_under(call.shard, TRIGGER_KEYS)
  local ids = redis.call('ZRANGE', k.held, '-inf', call.now_ms, 'BYSCORE', 'LIMIT', 0, call.limit)
  for _, trigger_id in ipairs(ids) do
    local stored = redis.call('HGET', k.held_payloads, trigger_id)
    if stored then
      local cut = string.find(stored, '\n', 1, true)
      local who = string.sub(stored, 1, cut - 1)
      to_outbox(k, trigger_id, who, string.sub(stored, cut + 1))
      log_decision(k, who, LOGGED.RELEASED, call.now_ms, cjson.encode({trigger_id = trigger_id}),
        call.log_size, call.fired_window_ms)
    end
    redis.call('ZREM', k.held, trigger_id)
    redis.call('HDEL', k.held_payloads, trigger_id)
  end
  return reply(RELEASED, {released = #ids})
end
