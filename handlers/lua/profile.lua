#!lua name=crmstream_profile
--[[
The profile stage: one FCALL applies a whole batch, customer by customer.

KEYS: for each of the N customers, the start its keys share ("<prefix>:{shop:customer}:"),
      which carries the hash tag; the header lists the suffixes that complete the NK
      keys (handlers/keys.py), in this order: profile, windows, cart, affinity, recent,
      favorites, dedup, tombstone as an earlier version named it, alias, erased aliases.
      Then, for each customer in the same order, its tombstone (Keys.tombstone: a keyed
      hash of shop and customer, in the customer's slot), so that it names no one.
Times are epoch milliseconds of event time.
ARGV: a header of 13 settings; the routes, one character per customer: "1" when its
      events are an anonymous shopper's that a worker's cache of aliases sent to the
      customer it was merged into, else "0"; then one entry per customer holding its
      events packed (see unpack_events, and handlers/profile/encode.py which writes them).
Returns {statuses, redirects, unlinked, bounced}: one status per event, in ARGV order
(1 applied, 0 duplicate, 2 erased, 3 redirected); for every anonymous shopper
already merged into a customer: its index, that customer, and 1 if the merge is
settled (the anonymous copy is gone), so the caller can send its events there;
for every customer erased in the batch, its index and each anonymous id once
merged into it: their alias keys live in other slots, so the caller removes them
(then the "xa" set that lists them, which keeps the list across a crash); and the
index of every cached route that led to an erased customer: the cache is stale
(another worker cut the alias), and the caller sends those events to the anonymous
shopper's own keys, whose alias, if any, says where they belong now.

Everything that can arrive out of order is kept order-free: counters add,
windows add into event-time buckets, recency is min/max, recent views and
favourites are scored by event time, and a cart line only counts the changes
made after the last order or clear that took it.
]]

local NK = 10
local K_PROFILE, K_WINDOWS, K_CART, K_AFFINITY, K_RECENT, K_FAVORITES, K_DEDUP = 1, 2, 3, 4, 5, 6, 7
local K_OLD_TOMBSTONE, K_ALIAS, K_ERASED_ALIASES = 8, 9, 10
local DATA_KEYS = 7 -- the first seven hold the profile; tombstone and alias outlive it
-- One ARGV entry per customer, holding its events back to back. Each event is a
-- length (6 hex digits), an 8-byte id digest, then "ts US type US a US c US d US"
-- and b, which runs to the end of the event (it may hold anything, even binary).
local function unpack_events(packed)
  local events, pos, size = {}, 1, #packed
  while pos <= size do
    local length = tonumber(string.sub(packed, pos, pos + 5), 16)
    local body = string.sub(packed, pos + 6, pos + 5 + length)
    pos = pos + 6 + length
    local fields, start = {}, 9
    for f = 1, 5 do
      local stop = string.find(body, '\31', start, true)
      fields[f] = string.sub(body, start, stop - 1)
      start = stop + 1
    end
    events[#events + 1] = {
      digest = string.sub(body, 1, 8), ts = tonumber(fields[1]), kind = fields[2],
      a = fields[3], b = string.sub(body, start), c = fields[4], d = fields[5],
    }
  end
  return events
end

local APPLIED, DUPLICATE, ERASED, REDIRECTED = 1, 0, 2, 3

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



-- The pieces of ``text`` between single-character separators, empty ones left out ("a,,b"
-- is two pieces; "" none). Unlike fields_of, for lists where an empty piece means nothing.
local function nonempty_pieces(text, sep)
  local out = {}
  if text == nil or text == '' then return out end
  for piece in string.gmatch(text, '([^' .. sep .. ']+)') do out[#out + 1] = piece end
  return out
end

-- The fields of ``text`` between plain separators, empty ones kept: "a||b" is three fields.
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

-- A customer's profile hash, loaded once and written back once.
local Profile = {}
Profile.__index = Profile

local function load_profile(key)
  local flat = redis.call('HGETALL', key)
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return setmetatable({key = key, fields = fields, dirty = {}}, Profile)
end

function Profile:set(name, value)
  self.fields[name] = tostring(value)
  self.dirty[name] = true
end

function Profile:incr(name, by)
  self:set(name, (tonumber(self.fields[name]) or 0) + by)
end

function Profile:max(name, value)
  local current = tonumber(self.fields[name])
  if current == nil or value > current then self:set(name, value) end
end

function Profile:min(name, value)
  local current = tonumber(self.fields[name])
  if current == nil or value < current then self:set(name, value) end
end

function Profile:save()
  local args = {}
  for name in pairs(self.dirty) do
    args[#args + 1] = name
    args[#args + 1] = self.fields[name]
  end
  if #args > 0 then redis.call('HSET', self.key, unpack(args)) end
end

-- Cart lines: "price|price_ts|category|removed_at|ts:delta;ts:delta...". A line is read
-- only when an event touches it, and only changed lines are written back.
local Cart = {}
Cart.__index = Cart

local function parse_line(encoded)
  local parts = fields_of(encoded, '|')
  local entries = {}
  for _, entry in ipairs(nonempty_pieces(parts[5], ';')) do
    local ts, delta = string.match(entry, '([^:]+):([^:]+)')
    entries[#entries + 1] = {tonumber(ts), tonumber(delta)}
  end
  return {
    price = tonumber(parts[1]), price_ts = tonumber(parts[2]), category = parts[3],
    removed_at = tonumber(parts[4]), entries = entries,
  }
end

local function encode_line(line)
  local encoded = {}
  for i, entry in ipairs(line.entries) do encoded[i] = entry[1] .. ':' .. entry[2] end
  return table.concat(
    {line.price, line.price_ts, line.category, line.removed_at, table.concat(encoded, ';')}, '|')
end

local function load_cart(key, cleared_at)
  return setmetatable(
    {key = key, lines = {}, changed = {}, cleared_at = cleared_at, taken = false}, Cart)
end

function Cart:line(item)
  local line = self.lines[item]
  if line == nil then
    local encoded = redis.call('HGET', self.key, item)
    if encoded then
      line = parse_line(encoded)
    else
      line = {price = 0, price_ts = 0, category = '', removed_at = 0, entries = {}}
    end
    self.lines[item] = line
  end
  return line
end

function Cart:change(item, ts, delta, category, price)
  local line = self:line(item)
  -- A change from before the order (or clear) that took the line is already spent.
  if ts <= line.removed_at or ts <= self.cleared_at then return end
  line.entries[#line.entries + 1] = {ts, delta}
  if price and ts >= line.price_ts then
    line.price, line.price_ts = price, ts
  end
  if category and category ~= '' then line.category = category end
  self.changed[item] = true
end

function Cart:take(item, ts)
  local line = self:line(item)
  if ts <= line.removed_at then return end
  line.removed_at = ts
  local kept = {}
  for _, entry in ipairs(line.entries) do
    if entry[1] > ts then kept[#kept + 1] = entry end
  end
  line.entries = kept
  self.changed[item] = true
  self.taken = true
end

function Cart:clear(ts)
  for _, item in ipairs(redis.call('HKEYS', self.key)) do self:take(item, ts) end
  for item in pairs(self.lines) do self:take(item, ts) end
  if ts > self.cleared_at then self.cleared_at = ts end
end

function Cart:save(max_markers)
  local args = {}
  for item in pairs(self.changed) do
    args[#args + 1] = item
    args[#args + 1] = encode_line(self.lines[item])
  end
  if #args > 0 then redis.call('HSET', self.key, unpack(args)) end
  -- A taken line stays as a marker, so that a late add from before the order stays out
  -- (a replay can run one partition far ahead of another). Only the newest are kept.
  if self.taken and redis.call('HLEN', self.key) > max_markers then
    local flat, markers = redis.call('HGETALL', self.key), {}
    for i = 1, #flat, 2 do
      local line = parse_line(flat[i + 1])
      if #line.entries == 0 then markers[#markers + 1] = {line.removed_at, flat[i]} end
    end
    table.sort(markers, function(x, y) return x[1] > y[1] end)
    local stale = {}
    for i = max_markers + 1, #markers do stale[#stale + 1] = markers[i][2] end
    if #stale > 0 then redis.call('HDEL', self.key, unpack(stale)) end
  end
end

-- Event-time buckets: "<kind>h<hour>" and "<kind>d<day>". New fields are counted, so
-- that pruning (which has to list them all) runs only every so many new buckets.
local function bump_windows(ctx, ts, hour_fields, day_fields)
  local key = ctx.keys[K_WINDOWS]
  local hour, day = math.floor(ts / 3600000), math.floor(ts / 86400000)
  for _, pair in ipairs(hour_fields) do
    if redis.call('HINCRBY', key, pair[1] .. hour, pair[2]) == pair[2] then
      ctx.profile:incr('window_fields', 1)
    end
  end
  for _, pair in ipairs(day_fields) do
    if redis.call('HINCRBY', key, pair[1] .. day, pair[2]) == pair[2] then
      ctx.profile:incr('window_fields', 1)
    end
  end
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

local function touch_affinity(key, category, weight, max_categories)
  if category == nil or category == '' then return end
  local score = redis.call('HINCRBY', key, category, weight)
  if score == weight and redis.call('HLEN', key) > max_categories then
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

local merge -- defined below, with the Context it works on

local function apply_event(ctx, ts, kind, a, b, c, d)
  local p, w = ctx.profile, ctx.keys[K_WINDOWS]
  local weights = ctx.weights
  p:min('first_seen', ts)
  p:max('last_seen', ts)
  if kind == 'item.viewed' then
    p:incr('views', 1)
    p:max('last_view', ts)
    bump_windows(ctx, ts, {{'vh', 1}}, {{'vd', 1}})
    touch_affinity(ctx.keys[K_AFFINITY], b, weights.view, ctx.max_categories)
    ctx.recent[#ctx.recent + 1] = ts
    ctx.recent[#ctx.recent + 1] = a
  elseif kind == 'item.favorited' then
    p:incr('favorites', 1)
    touch_affinity(ctx.keys[K_AFFINITY], b, weights.favorite, ctx.max_categories)
    ctx.favorites[#ctx.favorites + 1] = ts
    ctx.favorites[#ctx.favorites + 1] = a
  elseif kind == 'search.performed' then
    p:incr('searches', 1)
  elseif kind == 'cart.item_added' then
    p:incr('cart_adds', 1)
    p:max('last_cart', ts)
    bump_windows(ctx, ts, {{'ch', 1}}, {})
    touch_affinity(ctx.keys[K_AFFINITY], b, weights.cart, ctx.max_categories)
    ctx:cart():change(a, ts, tonumber(c), b, tonumber(d))
  elseif kind == 'cart.item_removed' then
    ctx:cart():change(a, ts, -tonumber(c), nil, nil)
  elseif kind == 'cart.cleared' then
    p:max('cart_cleared_at', ts)
    ctx:cart():clear(ts)
  elseif kind == 'order.placed' then
    p:incr('orders', 1)
    p:incr('units', tonumber(d))
    p:max('last_order', ts)
    bump_windows(ctx, ts, {}, {{'od', 1}})
    local cart = ctx:cart()
    for _, line in ipairs(nonempty_pieces(b, '\n')) do
      local item, category = string.match(line, '([^\t]+)\t(.*)')
      touch_affinity(ctx.keys[K_AFFINITY], category, weights.order, ctx.max_categories)
      cart:take(item, ts)
    end
  elseif kind == 'order.paid' then
    p:incr('paid_orders', 1)
    p:incr('spend', tonumber(c))
    p:incr('points', tonumber(d))
    p:max('last_paid', ts)
    bump_windows(ctx, ts, {}, {{'sd', tonumber(c)}})
  elseif kind == 'order.shipped' then
    p:max('last_shipped', ts)
  elseif kind == 'order.delivered' then
    p:max('last_delivered', ts)
  elseif kind == 'order.cancelled' then
    p:incr('cancels', 1)
  elseif kind == 'order.refunded' then
    p:incr('refunds', 1)
    p:incr('spend', -tonumber(c))
    p:incr('points', -tonumber(d))
    bump_windows(ctx, ts, {}, {{'sd', -tonumber(c)}})
  elseif kind == 'review.posted' then
    local rating = tonumber(c)
    p:incr('reviews', 1)
    p:incr('rating_sum', rating)
    if rating <= 2 then p:incr('complaints', 1) end
    p:max('last_review', ts)
  elseif kind == 'survey.answered' then
    p:incr('surveys', 1)
    if c == '1' then p:incr('satisfied', 1) end
  elseif kind == 'customer.registered' then
    p:min('registered_at', ts)
    apply_facts(p, b, ts)
  elseif kind == 'customer.updated' then
    apply_facts(p, b, ts)
  elseif kind == 'customer.identified' and b ~= '' then
    merge(ctx, cjson.decode(b), a)
  end
end

local Context = {}
Context.__index = Context

function Context:cart()
  if self.cart_state == nil then
    local cleared_at = tonumber(self.profile.fields['cart_cleared_at']) or 0
    self.cart_state = load_cart(self.keys[K_CART], cleared_at)
  end
  return self.cart_state
end

-- An anonymous shopper's history (from crm_detach) joins this customer's. The id is
-- remembered, so that an erasure can later cut the alias that leads here.
merge = function(ctx, state, anonymous_id)
  local p = ctx.profile
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
  for i = 1, #state.w, 2 do
    redis.call('HINCRBY', ctx.keys[K_WINDOWS], state.w[i], state.w[i + 1])
  end
  for i = 1, #state.a, 2 do
    redis.call('HINCRBY', ctx.keys[K_AFFINITY], state.a[i], state.a[i + 1])
  end
  local cart = ctx:cart()
  for i = 1, #state.c, 2 do
    local item, parts = state.c[i], fields_of(state.c[i + 1], '|')
    local price, price_ts, category = tonumber(parts[1]), tonumber(parts[2]), parts[3]
    for _, entry in ipairs(nonempty_pieces(parts[5], ';')) do
      local ts, delta = string.match(entry, '([^:]+):([^:]+)')
      cart:change(item, tonumber(ts), tonumber(delta), category, nil)
    end
    local line = cart:line(item)
    if price_ts > line.price_ts then line.price, line.price_ts = price, price_ts end
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
    redis.call('ZADD', ctx.keys[K_DEDUP], state.d[i + 1], state.d[i])
    -- A later copy of one of these events in this same batch is a duplicate too.
    ctx.fresh[state.d[i]] = true
  end
end

local function new_context(ckeys, weights, max_categories)
  return setmetatable({
    keys = ckeys, profile = load_profile(ckeys[K_PROFILE]), weights = weights,
    max_categories = max_categories, recent = {}, favorites = {}, fresh = {},
  }, Context)
end

local function customer_keys(base, suffixes)
  local ckeys = {}
  for k = 1, NK do ckeys[k] = base .. suffixes[k] end
  return ckeys
end

local function apply_batch(keys, args)
  local dedup_window = tonumber(args[1])
  local keep_hours, keep_days = tonumber(args[2]), tonumber(args[3])
  local max_recent, max_favorites = tonumber(args[4]), tonumber(args[5])
  local max_categories = tonumber(args[6])
  local weights = {
    view = tonumber(args[7]), favorite = tonumber(args[8]),
    cart = tonumber(args[9]), order = tonumber(args[10]),
  }
  -- Dedup marks are scored by when we saw the event, not by its event time: a redelivery
  -- comes soon after the first delivery, however old the event itself is.
  local now = tonumber(args[11])
  local max_cart_markers = tonumber(args[12])
  local suffixes = nonempty_pieces(args[13], ',')
  local routes = args[14]
  local customers = #keys / 2
  local statuses, redirects, unlinked, bounced = {}, {}, {}, {}
  for index = 1, customers do
    local events = unpack_events(args[14 + index])
    local count = #events
    local ckeys = customer_keys(keys[index], suffixes)
    local tombstone = keys[customers + index]
    local marks_of = redis.call('MGET', tombstone, ckeys[K_ALIAS], ckeys[K_OLD_TOMBSTONE])
    local erased_at, alias = tonumber(marks_of[1] or ''), marks_of[2]
    if marks_of[3] then
      -- Kept by an earlier version under a name that says who: moved under the hash.
      erased_at = math.max(erased_at or 0, tonumber(marks_of[3]))
      redis.call('SET', tombstone, erased_at)
      redis.call('DEL', ckeys[K_OLD_TOMBSTONE])
    end
    local digests = {}
    for e = 1, count do digests[e] = events[e].digest end
    local seen = redis.call('ZMSCORE', ckeys[K_DEDUP], unpack(digests))
    if erased_at and string.sub(routes, index, index) == '1' then
      for _ = 1, count do statuses[#statuses + 1] = REDIRECTED end
      bounced[#bounced + 1] = index
    elseif alias then
      -- Merged into a customer already: its events belong there now, except those this
      -- shopper has seen itself (a merge may still be on its way to the customer).
      for e = 1, count do
        statuses[#statuses + 1] = seen[e] and DUPLICATE or REDIRECTED
      end
      redirects[#redirects + 1] = index
      redirects[#redirects + 1] = alias
      -- Settled once the anonymous copy is gone: then the caller may route there directly.
      redirects[#redirects + 1] = redis.call('EXISTS', ckeys[K_PROFILE], ckeys[K_DEDUP]) == 0 and 1 or 0
    else
    local ctx = new_context(ckeys, weights, max_categories)
    local fresh, marks, latest, erasing = ctx.fresh, {}, 0, false
    for e = 1, count do
      local event = events[e]
      local digest, ts = event.digest, event.ts
      if seen[e] or fresh[digest] then
        statuses[#statuses + 1] = DUPLICATE
      elseif erased_at and ts <= erased_at then
        -- Forgotten on request: late events must not bring the old profile back.
        statuses[#statuses + 1] = ERASED
        -- A redelivered request finishes what a crash may have left: the aliases.
        erasing = erasing or event.kind == 'customer.erasure_requested'
      elseif event.kind == 'customer.erasure_requested' then
        -- Everything goes, dedup marks too (they could re-identify); the tombstone stays.
        local merged_ids = ctx.profile.fields['merged_ids']
        if merged_ids then
          redis.call('SADD', ckeys[K_ERASED_ALIASES], unpack(fields_of(merged_ids, '\n')))
        end
        erasing = true
        for k = 1, DATA_KEYS do redis.call('DEL', ckeys[k]) end
        erased_at = math.max(erased_at or 0, ts)
        redis.call('SET', tombstone, erased_at)
        ctx = new_context(ckeys, weights, max_categories)
        fresh, marks, latest = ctx.fresh, {}, 0
        statuses[#statuses + 1] = APPLIED
      else
        fresh[digest] = true
        marks[#marks + 1] = now
        marks[#marks + 1] = digest
        apply_event(ctx, ts, event.kind, event.a, event.b, event.c, event.d)
        if ts > latest then latest = ts end
        statuses[#statuses + 1] = APPLIED
      end
    end
    if #marks > 0 then
      local p = ctx.profile
      redis.call('ZADD', ckeys[K_DEDUP], unpack(marks))
      local newest = tonumber(p.fields['last_seen']) or latest
      -- Marks older than the window go, at most once an hour (of our clock) per customer.
      if now - (tonumber(p.fields['dedup_pruned_at']) or 0) > 3600000 then
        redis.call('ZREMRANGEBYSCORE', ckeys[K_DEDUP], '-inf', '(' .. (now - dedup_window))
        p:set('dedup_pruned_at', now)
      end
      if #ctx.recent > 0 then
        if redis.call('ZADD', ckeys[K_RECENT], 'GT', unpack(ctx.recent)) > 0 then
          redis.call('ZREMRANGEBYRANK', ckeys[K_RECENT], 0, -(max_recent + 1))
        end
      end
      if #ctx.favorites > 0 then
        if redis.call('ZADD', ckeys[K_FAVORITES], 'GT', unpack(ctx.favorites)) > 0 then
          redis.call('ZREMRANGEBYRANK', ckeys[K_FAVORITES], 0, -(max_favorites + 1))
        end
      end
      if ctx.cart_state then
        ctx.cart_state:save(max_cart_markers)
        if ctx.cart_state.cleared_at > 0 then p:max('cart_cleared_at', ctx.cart_state.cleared_at) end
      end
      -- Buckets older than the longest window (plus lateness) go, every 32 new buckets.
      if (tonumber(p.fields['window_fields']) or 0) > (tonumber(p.fields['window_prune_at']) or 48) then
        local remaining = prune_windows(ckeys[K_WINDOWS], newest, keep_hours, keep_days)
        p:set('window_fields', remaining)
        p:set('window_prune_at', remaining + 32)
      end
      p:save()
    end
    if erasing then
      for _, anonymous_id in ipairs(redis.call('SMEMBERS', ckeys[K_ERASED_ALIASES])) do
        unlinked[#unlinked + 1] = index
        unlinked[#unlinked + 1] = anonymous_id
      end
    end
    end
  end
  return {statuses, redirects, unlinked, bounced}
end

-- First step of a login merge, on the anonymous shopper's own keys: point it at the
-- customer (once; a second customer is refused) and hand back its history, which
-- stays frozen, since its later events now go to the customer.
local function detach(bases, args)
  local customer = args[1]
  local keys = customer_keys(bases[1], nonempty_pieces(args[2], ','))
  local alias = redis.call('GET', keys[K_ALIAS])
  if alias and alias ~= customer then return {'taken', alias} end
  if not alias then redis.call('SET', keys[K_ALIAS], customer) end
  local state = {
    p = redis.call('HGETALL', keys[K_PROFILE]),
    w = redis.call('HGETALL', keys[K_WINDOWS]),
    c = redis.call('HGETALL', keys[K_CART]),
    a = redis.call('HGETALL', keys[K_AFFINITY]),
    r = redis.call('ZRANGE', keys[K_RECENT], 0, -1, 'WITHSCORES'),
    f = redis.call('ZRANGE', keys[K_FAVORITES], 0, -1, 'WITHSCORES'),
    d = redis.call('ZRANGE', keys[K_DEDUP], 0, -1, 'WITHSCORES'),
  }
  return {'ok', cjson.encode(state)}
end

-- Last step: once the customer has the history, the anonymous copy goes (the alias stays).
local function forget_detached(bases, args)
  local keys = customer_keys(bases[1], nonempty_pieces(args[1], ','))
  for k = 1, DATA_KEYS do redis.call('DEL', keys[k]) end
  return 1
end

-- The read side: the keys profiles are built from, for every customer a batch touched,
-- in one call (a pipeline of reads costs the worker a reply to parse per key).
-- ARGV: the suffixes, then the positions of the keys wanted among the first six
-- ("1,2": profile and windows). Returns, per customer, one reply per key wanted: a
-- hash as HGETALL gives it, a sorted set as its members, newest first.
local function read_profiles(bases, args)
  local suffixes, wanted = nonempty_pieces(args[1], ','), {}
  for _, position in ipairs(nonempty_pieces(args[2], ',')) do wanted[#wanted + 1] = tonumber(position) end
  local found = {}
  for i = 1, #bases do
    local keys, row = customer_keys(bases[i], suffixes), {}
    for j, k in ipairs(wanted) do
      if k == K_RECENT or k == K_FAVORITES then
        row[j] = redis.call('ZRANGE', keys[k], 0, -1, 'REV')
      else
        row[j] = redis.call('HGETALL', keys[k])
      end
    end
    found[i] = row
  end
  return found
end

redis.register_function('crm_apply_batch', apply_batch)
redis.register_function('crm_detach', detach)
redis.register_function('crm_forget_detached', forget_detached)
redis.register_function{
  function_name = 'crm_read_profiles', callback = read_profiles, flags = {'no-writes'},
}
