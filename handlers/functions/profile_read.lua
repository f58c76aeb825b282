-- Live profiles, part four: login merges on the anonymous shopper's side, and reads.

-- One anonymous shopper's history, frozen for `customer` (crm_detach).
local function detach_one(base, customer)
  local ckeys = keys_under(base, CUSTOMER_KEYS)
  local alias = redis.call('GET', ckeys.alias)
  if alias and alias ~= customer then
    return reply(HISTORY, {taken_by = alias, state = ''})
  end
  if not alias then redis.call('SET', ckeys.alias, customer) end
  local state = {
    p = redis.call('HGETALL', ckeys.profile),
    w = redis.call('HGETALL', ckeys.windows),
    c = redis.call('HGETALL', ckeys.cart),
    a = redis.call('HGETALL', ckeys.affinity),
    r = redis.call('ZRANGE', ckeys.recent, 0, -1, 'WITHSCORES'),
    f = redis.call('ZRANGE', ckeys.favorites, 0, -1, 'WITHSCORES'),
    d = redis.call('ZRANGE', ckeys.dedup, 0, -1, 'WITHSCORES'),
  }
  return reply(HISTORY, {taken_by = '', state = cjson.encode(state)})
end

local function detach(keys, args)
  local call = read_call(DETACH, keys, args)
  local histories = {}
  for n = 1, call.count do
    local login = read_item(DETACH, keys, args, n)
    histories[n] = detach_one(login.base, login.customer)
  end
  return reply(HISTORIES, {histories = histories})
end

local function forget_detached(keys, args)
  local call = read_call(FORGET_DETACHED, keys, args)
  for n = 1, call.count do
    erase_data(keys_under(read_item(FORGET_DETACHED, keys, args, n).base, CUSTOMER_KEYS))
  end
  return reply(FORGOTTEN, {forgotten = call.count})
end

-- Per customer, one reply per key wanted (read_row).
local function read_profiles(keys, args)
  local call = read_call(READ_PROFILES, keys, args)
  local wanted = nonempty_pieces(call.wanted, ',')
  local rows = {}
  for n = 1, call.count do
    local base = read_item(READ_PROFILES, keys, args, n).base
    rows[n] = read_row(keys_under(base, CUSTOMER_KEYS), wanted)
  end
  return reply(STORED, {rows = rows})
end
