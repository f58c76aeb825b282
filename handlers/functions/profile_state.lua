-- Live profiles (handlers/functions/profile.py), part one: a batch's events unpacked, and
-- the profile hash and the cart as a batch changes them (read once, written back once).

-- The pieces of `text` between single-character separators, empty ones left out ("a,,b"
-- is two pieces; "" none). Unlike fields_of, for lists where an empty piece means nothing.
local function nonempty_pieces(text, sep)
  local out = {}
  if text == nil or text == '' then return out end
  for piece in string.gmatch(text, '([^' .. sep .. ']+)') do out[#out + 1] = piece end
  return out
end

-- A customer's events, packed back to back (handlers/profile/encode.py): each a length
-- (6 hex digits), a digest, then PACKED_FIELDS each ended by a separator, then b, which
-- runs to the end of the event (it may hold anything, even binary).
local function unpack_events(packed)
  local events, pos, size = {}, 1, #packed
  local sep, digest_bytes = NAMES.SEPARATOR, NAMES.DIGEST_BYTES
  while pos <= size do
    local length = tonumber(string.sub(packed, pos, pos + 5), 16)
    local body = string.sub(packed, pos + 6, pos + 5 + length)
    pos = pos + 6 + length
    local event, start = {digest = string.sub(body, 1, digest_bytes)}, digest_bytes + 1
    for _, name in ipairs(PACKED_FIELDS) do
      local stop = string.find(body, sep, start, true)
      event[name] = string.sub(body, start, stop - 1)
      start = stop + 1
    end
    event.ts = tonumber(event.ts)
    event.b = string.sub(body, start)
    events[#events + 1] = event
  end
  return events
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

-- Every field, flat (name, value, ...) as HGETALL would give the saved hash.
function Profile:flat()
  local flat = {}
  for name, value in pairs(self.fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  return flat
end

function Profile:save()
  local args = {}
  for name in pairs(self.dirty) do
    args[#args + 1] = name
    args[#args + 1] = self.fields[name]
  end
  if #args > 0 then redis.call('HSET', self.key, unpack(args)) end
end

-- Cart lines (CART_LINE): a line is read only when an event touches it, and only changed
-- lines are written back.
local Cart = {}
Cart.__index = Cart

local function parse_line(encoded)
  local parts = fields_of(encoded, CART_LINE.FIELD)
  local entries = {}
  for _, entry in ipairs(nonempty_pieces(parts[5], CART_LINE.ENTRY)) do
    local cut = string.find(entry, CART_LINE.DELTA, 1, true)
    entries[#entries + 1] = {tonumber(string.sub(entry, 1, cut - 1)), tonumber(string.sub(entry, cut + 1))}
  end
  return {
    price = tonumber(parts[1]), price_ts = tonumber(parts[2]), category = parts[3],
    removed_at = tonumber(parts[4]), entries = entries,
  }
end

local function encode_line(line)
  local encoded = {}
  for i, entry in ipairs(line.entries) do encoded[i] = entry[1] .. CART_LINE.DELTA .. entry[2] end
  return table.concat({line.price, line.price_ts, line.category, line.removed_at,
    table.concat(encoded, CART_LINE.ENTRY)}, CART_LINE.FIELD)
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
