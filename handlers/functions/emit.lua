-- The guards and the outbox: emit decides candidates, release sends what quiet hours held.

-- The guards for one candidate (a rule's trigger, or a journey's send: journeys.lua):
-- dedup by occurrence, max_age, consent, cooldown, the daily cap, then quiet hours.
-- Returns its DECISION; the decision log and the minute counts have it when it is news.
local function guard(k, c, now, window, log_size)
  local who, rule, at, trigger_id = c.who, c.rule_id, c.at_ms, c.trigger_id
  local fired = k.fired .. who
  local cooldowns = k.cooldowns .. who
  local status
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
    local last = tonumber(redis.call('HGET', cooldowns, rule) or '')
    local cap_key, cap_field = k.caps .. who, c.channel .. ':' .. c.cap_day
    local cooldown, cap = c.cooldown_ms, c.cap
    if cooldown > 0 and last and at < last + cooldown and at > last - cooldown then
      new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.COOLDOWN)
      status = DECISION.COOLDOWN
    elseif cap > 0 and (tonumber(redis.call('HGET', cap_key, cap_field) or '0')) >= cap then
      new = suppressed(k, fired, who, rule, trigger_id, at, LOGGED.CAPPED)
      status = DECISION.CAPPED
    else
      if cap > 0 then
        if redis.call('HINCRBY', cap_key, cap_field, 1) == 1 then prune_caps(cap_key, c.cap_day) end
        redis.call('EXPIRE', cap_key, CAP_TTL_S)
      end
      if not last or at > last then redis.call('HSET', cooldowns, rule, at) end
      if c.release_at_ms > 0 then
        redis.call('ZADD', k.held, c.release_at_ms, trigger_id)
        redis.call('HSET', k.held_payloads, trigger_id, who .. '\n' .. c.payload)
        status = DECISION.HELD
      else
        to_outbox(k, trigger_id, who, c.payload)
        status = DECISION.SENT
      end
      redis.call('ZADD', fired, at, trigger_id)
      redis.call('ZREMRANGEBYSCORE', fired, '-inf', '(' .. (at - window))
      count(k, who, rule, c.holdout and LOGGED.HOLDOUT or status)
      attribute(k, who, rule, trigger_id, at, c.goal_key, c.goal_window_ms, c.holdout and 'h' or 's')
    end
  end
  if new then
    local outcome = status == DECISION.SKIPPED and LOGGED.CONSENT or status
    if c.holdout and (status == DECISION.SENT or status == DECISION.HELD) then
      outcome = LOGGED.HOLDOUT
    end
    log_decision(k, who, outcome, now, c.why, log_size, window)
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
