-- Live profiles, part three: a batch, customer by customer, with their dedup, erasure and
-- login routing.

-- The keys that hold the profile: an erasure takes them; the tombstone and the alias stay.
local DATA_KEYS = {'profile', 'windows', 'cart', 'affinity', 'recent', 'favorites', 'dedup'}

local function erase_data(keys)
  local names = {}
  for i, name in ipairs(DATA_KEYS) do names[i] = keys[name] end
  redis.call('DEL', unpack(names))  -- one slot: the customer's hash tag
end

-- A customer's keys named in `wanted`, one reply each: a hash as HGETALL gives it, a sorted
-- set (recent views, favourites) as its members, newest first. `profile`: the profile hash
-- as a batch just left it in memory (Profile), given back without reading it again.
local function read_row(ckeys, wanted, profile)
  local row = {}
  for j, name in ipairs(wanted) do
    if name == 'recent' or name == 'favorites' then
      row[j] = redis.call('ZRANGE', ckeys[name], 0, -1, 'REV')
    elseif name == 'profile' and profile then
      row[j] = profile:flat()
    else
      row[j] = redis.call('HGETALL', ckeys[name])
    end
  end
  return row
end

-- After the batch's events: the window buckets, dedup marks, recent views, favourites, cart
-- and windows' pruning, each written once, and the profile hash.
local function save_customer(ctx, call, marks, latest)
  local p, keys, now = ctx.profile, ctx.keys, call.now_ms
  write_windows(ctx)
  redis.call('ZADD', keys.dedup, unpack(marks))
  local newest = tonumber(p.fields['last_seen']) or latest
  -- Marks older than the window go, at most once an hour (of our clock) per customer.
  if now - (tonumber(p.fields['dedup_pruned_at']) or 0) > 3600000 then
    redis.call('ZREMRANGEBYSCORE', keys.dedup, '-inf', '(' .. (now - call.dedup_window_ms))
    p:set('dedup_pruned_at', now)
  end
  if #ctx.recent > 0 then ctx.touched[WATCHED_KEYS.recent] = true end
  if #ctx.favorites > 0 then ctx.touched[WATCHED_KEYS.favorites] = true end
  if #ctx.recent > 0 and redis.call('ZADD', keys.recent, 'GT', unpack(ctx.recent)) > 0 then
    redis.call('ZREMRANGEBYRANK', keys.recent, 0, -(call.max_recent + 1))
  end
  if #ctx.favorites > 0 and redis.call('ZADD', keys.favorites, 'GT', unpack(ctx.favorites)) > 0 then
    redis.call('ZREMRANGEBYRANK', keys.favorites, 0, -(call.max_favorites + 1))
  end
  if ctx.cart_state then
    if next(ctx.cart_state.changed) ~= nil then ctx.touched[WATCHED_KEYS.cart] = true end
    ctx.cart_state:save(call.max_cart_markers)
    if ctx.cart_state.cleared_at > 0 then p:max('cart_cleared_at', ctx.cart_state.cleared_at) end
  end
  -- Buckets older than the longest window (plus lateness) go, every 32 new buckets.
  if (tonumber(p.fields['window_fields']) or 0) > (tonumber(p.fields['window_prune_at']) or 48) then
    local remaining = prune_windows(keys.windows, newest, call.keep_hours, call.keep_days)
    p:set('window_fields', remaining)
    p:set('window_prune_at', remaining + 32)
  end
  p:save()
end

-- `watched` (ApplyBatch): true for anything, or a set of WATCH names.
local function watch_set(text)
  if text == WATCH.ALL then return true end
  local set = {}
  for _, name in ipairs(nonempty_pieces(text, ',')) do set[name] = true end
  return set
end

local function changed_watched(ctx, watched)
  if ctx.everything then return true end
  local dirty, touched = ctx.profile.dirty, ctx.touched
  if watched == true then return next(dirty) ~= nil or next(touched) ~= nil end
  for name in pairs(dirty) do if watched[name] then return true end end
  for name in pairs(touched) do if watched[name] then return true end end
  return false
end

-- One customer's events, in order, when they are not routed elsewhere; returns whether the
-- batch erased them (their aliases are then to be cut), and whether it changed anything
-- watched of theirs (an erasure and a duplicate count: see Applied.changed), and their
-- profile as the batch left it.
local function apply_customer(call, keys, tombstone, erased_at, events, seen, statuses, watched)
  local ctx = new_context(keys, call)
  local fresh, marks, latest, erasing = ctx.fresh, {}, 0, false
  local changed = false
  for e, event in ipairs(events) do
    local digest, ts = event.digest, event.ts
    if seen[e] or fresh[digest] then
      statuses[#statuses + 1] = STATUS.DUPLICATE
      changed = true
    elseif erased_at and ts <= erased_at then
      -- Forgotten on request: late events must not bring the old profile back.
      statuses[#statuses + 1] = STATUS.ERASED
      -- A redelivered request finishes what a crash may have left: the aliases.
      erasing = erasing or event.kind == 'customer.erasure_requested'
    elseif event.kind == 'customer.erasure_requested' then
      -- Everything goes, dedup marks too (they could re-identify); the tombstone stays.
      local merged_ids = ctx.profile.fields['merged_ids']
      if merged_ids then
        redis.call('SADD', keys.erased_aliases, unpack(fields_of(merged_ids, '\n')))
      end
      erasing = true
      erase_data(keys)
      erased_at = math.max(erased_at or 0, ts)
      redis.call('SET', tombstone, erased_at)
      ctx = new_context(keys, call)
      fresh, marks, latest = ctx.fresh, {}, 0
      statuses[#statuses + 1] = STATUS.APPLIED
    else
      fresh[digest] = true
      marks[#marks + 1] = call.now_ms
      marks[#marks + 1] = digest
      apply_event(ctx, event)
      if ts > latest then latest = ts end
      statuses[#statuses + 1] = STATUS.APPLIED
    end
  end
  if #marks > 0 then save_customer(ctx, call, marks, latest) end
  return erasing, changed or erasing or changed_watched(ctx, watched), ctx.profile
end

local function apply_batch(keys, args)
  local call = read_call(APPLY_BATCH, keys, args)
  local statuses, redirects, unlinked, bounced, changed = {}, {}, {}, {}, {}
  local read, rows = {}, {}
  local watched = watch_set(call.watched)
  local read_back = nonempty_pieces(call.read_back, ',')
  -- Bases whose keys this call gave back already: an anonymous shopper's events routed to
  -- the same customer come after the customer's own, and change what was read, so the
  -- customer's keys are read again there (the caller keeps the last row of a customer).
  local given_back = {}
  for index = 1, call.count do
    local customer = read_item(APPLY_BATCH, keys, args, index)
    local events = unpack_events(customer.events)
    local ckeys = keys_under(customer.base, CUSTOMER_KEYS)
    local tombstone = customer.tombstone
    local marks_of = redis.call('MGET', tombstone, ckeys.alias, ckeys.old_tombstone)
    local erased_at, alias = tonumber(marks_of[1] or ''), marks_of[2]
    if marks_of[3] then
      -- Kept by an earlier version under a name that says who: moved under the hash.
      erased_at = math.max(erased_at or 0, tonumber(marks_of[3]))
      redis.call('SET', tombstone, erased_at)
      redis.call('DEL', ckeys.old_tombstone)
    end
    local digests = {}
    for e, event in ipairs(events) do digests[e] = event.digest end
    local seen = redis.call('ZMSCORE', ckeys.dedup, unpack(digests))
    if erased_at and customer.cached_route then
      for _ = 1, #events do statuses[#statuses + 1] = STATUS.REDIRECTED end
      bounced[#bounced + 1] = index
    elseif alias then
      -- Merged into a customer already: its events belong there now, except those this
      -- shopper has seen itself (a merge may still be on its way to the customer).
      local duplicate = false
      for e = 1, #events do
        statuses[#statuses + 1] = seen[e] and STATUS.DUPLICATE or STATUS.REDIRECTED
        duplicate = duplicate or seen[e] ~= false
      end
      if duplicate then changed[#changed + 1] = index end
      -- Settled once the anonymous copy is gone: then the caller may route there directly.
      local settled = redis.call('EXISTS', ckeys.profile, ckeys.dedup) == 0 and 1 or 0
      redirects[#redirects + 1] = reply(REDIRECT, {index = index, customer = alias, settled = settled})
    else
      local erasing, changes, profile = apply_customer(
        call, ckeys, tombstone, erased_at, events, seen, statuses, watched)
      if erasing then
        for _, anonymous_id in ipairs(redis.call('SMEMBERS', ckeys.erased_aliases)) do
          unlinked[#unlinked + 1] = reply(UNLINKED, {index = index, anonymous_id = anonymous_id})
        end
      end
      if changes then changed[#changed + 1] = index end
      if #read_back > 0 and (changes or customer.read_back or given_back[customer.base]) then
        read[#read + 1] = index
        rows[#rows + 1] = read_row(ckeys, read_back, profile)
        given_back[customer.base] = true
      end
    end
  end
  return reply(APPLIED, {statuses = statuses, redirects = redirects, unlinked = unlinked,
    bounced = bounced, changed = changed, read = read, rows = rows})
end
