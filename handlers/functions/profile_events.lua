-- Live profiles, part two: what each kind of event does to a customer, and a login merge.
-- `ctx` is one customer's batch: its keys by name, its profile, its cart once touched,
-- the recent views and favourites to add, the dedup digests seen in the batch.

-- Event-time buckets: "<bucket><hour>" and "<bucket><day>" (BUCKET). A customer's batch
-- sums its events' counts per bucket, and each bucket is written once (write_windows).
local HOUR_MS, DAY_MS = 3600000, 86400000

local function bump(ctx, prefix, bucket, by)
  local field = prefix .. bucket
  local bumps = ctx.window_bumps
  bumps[field] = (bumps[field] or 0) + by
  ctx.touched[WATCHED_WINDOWS[prefix]] = true
end

local function bump_hour(ctx, prefix, ts, by) bump(ctx, prefix, math.floor(ts / HOUR_MS), by) end
local function bump_day(ctx, prefix, ts, by) bump(ctx, prefix, math.floor(ts / DAY_MS), by) end

-- The sums so far, into the windows hash. New fields are counted, so that pruning (which
-- has to list them all) runs only every so many.
local function write_windows(ctx)
  local bumps = ctx.window_bumps
  if next(bumps) == nil then return end
  local key, profile = ctx.keys.windows, ctx.profile
  for field, by in pairs(bumps) do
    if redis.call('HINCRBY', key, field, by) == by then profile:incr('window_fields', 1) end
  end
  ctx.window_bumps = {}
end

local function prune_windows(key, latest, keep_hours, keep_days)
  local oldest_hour = math.floor(latest / 3600000) - keep_hours
  local oldest_day = math.floor(latest / 86400000) - keep_days
  local stale, fields = {}, redis.call('HKEYS', key)
  for _, field in ipairs(fields) do
    local kind, bucket = string.sub(field, 2, 2), tonumber(string.sub(field, 3))
    if (kind == 'h' and bucket < oldest_hour) or (kind == 'd' and bucket < oldest_day) then
      stale[#stale + 1] = field
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return #fields - #stale
end

local function touch_affinity(ctx, category, weight)
  if category == nil or category == '' then return end
  ctx.touched[WATCHED_KEYS.affinity] = true
  local key = ctx.keys.affinity
  local score = redis.call('HINCRBY', key, category, weight)
  if score == weight and redis.call('HLEN', key) > ctx.max_categories then
    -- Over the bound: the weakest category goes.
    local flat = redis.call('HGETALL', key)
    local weakest, lowest = nil, nil
    for i = 1, #flat, 2 do
      local value = tonumber(flat[i + 1])
      if lowest == nil or value < lowest then weakest, lowest = flat[i], value end
    end
    redis.call('HDEL', key, weakest)
  end
end

local function apply_facts(profile, encoded, ts)
  for _, pair in ipairs(nonempty_pieces(encoded, '\n')) do
    local name, value = string.match(pair, '([^\t]+)\t(.*)')
    if name then profile:set(name, value) end
  end
  profile:max('facts_at', ts)
end

local Context = {}
Context.__index = Context

function Context:cart()
  if self.cart_state == nil then
    local cleared_at = tonumber(self.profile.fields['cart_cleared_at']) or 0
    self.cart_state = load_cart(self.keys.cart, cleared_at)
  end
  return self.cart_state
end

local function new_context(keys, call)
  return setmetatable({
    keys = keys, profile = load_profile(keys.profile), call = call,
    max_categories = call.max_categories, recent = {}, favorites = {}, fresh = {},
    window_bumps = {},  -- window bucket → what the batch adds to it, not yet written
    -- What the batch changed besides the profile hash's fields (those are its dirty ones):
    -- WATCH names; `everything` once a merge brought a whole history.
    touched = {}, everything = false,
  }, Context)
end

-- How each profile field merges when an anonymous history joins a customer.
local MERGE_MIN = {first_seen = true, registered_at = true}
local MERGE_MAX = {
  last_seen = true, last_view = true, last_cart = true, last_order = true, last_paid = true,
  last_shipped = true, last_delivered = true, last_review = true, facts_at = true,
}
local MERGE_ADD = {
  views = true, favorites = true, cart_adds = true, searches = true, orders = true,
  units = true, paid_orders = true, spend = true, points = true, refunds = true,
  cancels = true, reviews = true, rating_sum = true, complaints = true, surveys = true,
  satisfied = true,
}

-- An anonymous shopper's history (from crm_detach) joins this customer's. The id is
-- remembered, so that an erasure can later cut the alias that leads here.
local function merge(ctx, state, anonymous_id)
  local p = ctx.profile
  ctx.everything = true
  local merged_ids = p.fields['merged_ids']
  if merged_ids == nil then
    p:set('merged_ids', anonymous_id)
  elseif string.find('\n' .. merged_ids .. '\n', '\n' .. anonymous_id .. '\n', 1, true) == nil then
    p:set('merged_ids', merged_ids .. '\n' .. anonymous_id)
  end
  for i = 1, #state.p, 2 do
    local name, value = state.p[i], state.p[i + 1]
    if MERGE_MIN[name] then p:min(name, tonumber(value))
    elseif MERGE_MAX[name] then p:max(name, tonumber(value))
    elseif MERGE_ADD[name] then p:incr(name, tonumber(value))
    end
  end
  -- Counted as if written one by one: what this batch added first, then the history's.
  write_windows(ctx)
  for i = 1, #state.w, 2 do redis.call('HINCRBY', ctx.keys.windows, state.w[i], state.w[i + 1]) end
  for i = 1, #state.a, 2 do redis.call('HINCRBY', ctx.keys.affinity, state.a[i], state.a[i + 1]) end
  local cart = ctx:cart()
  for i = 1, #state.c, 2 do
    local item, line = state.c[i], parse_line(state.c[i + 1])
    for _, entry in ipairs(line.entries) do cart:change(item, entry[1], entry[2], line.category, nil) end
    local merged = cart:line(item)
    if line.price_ts > merged.price_ts then merged.price, merged.price_ts = line.price, line.price_ts end
  end
  for i = 1, #state.r, 2 do
    ctx.recent[#ctx.recent + 1] = state.r[i + 1]
    ctx.recent[#ctx.recent + 1] = state.r[i]
  end
  for i = 1, #state.f, 2 do
    ctx.favorites[#ctx.favorites + 1] = state.f[i + 1]
    ctx.favorites[#ctx.favorites + 1] = state.f[i]
  end
  for i = 1, #state.d, 2 do
    redis.call('ZADD', ctx.keys.dedup, state.d[i + 1], state.d[i])
    -- A later copy of one of these events in this same batch is a duplicate too.
    ctx.fresh[state.d[i]] = true
  end
end

-- What each event type does (a..d as handlers/profile/encode.py packs them); every event
-- first moves first_seen and last_seen. A type not here changes nothing more.
local APPLY = {
  ['item.viewed'] = function(ctx, e, p)
    p:incr('views', 1)
    p:max('last_view', e.ts)
    bump_hour(ctx, BUCKET.VIEWS_HOUR, e.ts, 1)
    bump_day(ctx, BUCKET.VIEWS_DAY, e.ts, 1)
    touch_affinity(ctx, e.b, ctx.call.view_weight)
    ctx.recent[#ctx.recent + 1] = e.ts
    ctx.recent[#ctx.recent + 1] = e.a
  end,
  ['item.favorited'] = function(ctx, e, p)
    p:incr('favorites', 1)
    touch_affinity(ctx, e.b, ctx.call.favorite_weight)
    ctx.favorites[#ctx.favorites + 1] = e.ts
    ctx.favorites[#ctx.favorites + 1] = e.a
  end,
  ['search.performed'] = function(_, _, p) p:incr('searches', 1) end,
  ['cart.item_added'] = function(ctx, e, p)
    p:incr('cart_adds', 1)
    p:max('last_cart', e.ts)
    bump_hour(ctx, BUCKET.CART_ADDS_HOUR, e.ts, 1)
    touch_affinity(ctx, e.b, ctx.call.cart_weight)
    ctx:cart():change(e.a, e.ts, tonumber(e.c), e.b, tonumber(e.d))
  end,
  ['cart.item_removed'] = function(ctx, e)
    ctx:cart():change(e.a, e.ts, -tonumber(e.c), nil, nil)
  end,
  ['cart.cleared'] = function(ctx, e, p)
    p:max('cart_cleared_at', e.ts)
    ctx:cart():clear(e.ts)
  end,
  ['order.placed'] = function(ctx, e, p)
    p:incr('orders', 1)
    p:incr('units', tonumber(e.d))
    p:max('last_order', e.ts)
    bump_day(ctx, BUCKET.ORDERS_DAY, e.ts, 1)
    local cart = ctx:cart()
    for _, line in ipairs(nonempty_pieces(e.b, '\n')) do
      local item, category = string.match(line, '([^\t]+)\t(.*)')
      touch_affinity(ctx, category, ctx.call.order_weight)
      cart:take(item, e.ts)
    end
  end,
  ['order.paid'] = function(ctx, e, p)
    p:incr('paid_orders', 1)
    p:incr('spend', tonumber(e.c))
    p:incr('points', tonumber(e.d))
    p:max('last_paid', e.ts)
    bump_day(ctx, BUCKET.SPEND_DAY, e.ts, tonumber(e.c))
  end,
  ['order.shipped'] = function(_, e, p) p:max('last_shipped', e.ts) end,
  ['order.delivered'] = function(_, e, p) p:max('last_delivered', e.ts) end,
  ['order.cancelled'] = function(_, _, p) p:incr('cancels', 1) end,
  ['order.refunded'] = function(ctx, e, p)
    p:incr('refunds', 1)
    p:incr('spend', -tonumber(e.c))
    p:incr('points', -tonumber(e.d))
    bump_day(ctx, BUCKET.SPEND_DAY, e.ts, -tonumber(e.c))
  end,
  ['review.posted'] = function(_, e, p)
    local rating = tonumber(e.c)
    p:incr('reviews', 1)
    p:incr('rating_sum', rating)
    if rating <= 2 then p:incr('complaints', 1) end
    p:max('last_review', e.ts)
  end,
  ['survey.answered'] = function(_, e, p)
    p:incr('surveys', 1)
    if e.c == '1' then p:incr('satisfied', 1) end
  end,
  ['customer.registered'] = function(_, e, p)
    p:min('registered_at', e.ts)
    apply_facts(p, e.b, e.ts)
  end,
  ['customer.updated'] = function(_, e, p) apply_facts(p, e.b, e.ts) end,
  ['customer.identified'] = function(ctx, e)
    if e.b ~= '' then merge(ctx, cjson.decode(e.b), e.a) end
  end,
}

local function apply_event(ctx, event)
  local p = ctx.profile
  p:min('first_seen', event.ts)
  p:max('last_seen', event.ts)
  local apply = APPLY[event.kind]
  if apply then apply(ctx, event, p) end
end
