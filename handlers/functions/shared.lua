-- Shared by every library: reading a call by the layout its Python side wrote
-- (handlers/functions/contract.py), replying by name, and small text helpers.

-- What read_call and read_item return answer only to the names the layout has: a name
-- the Python side does not send is an error where it is read, not a nil.
local function strict(spec)
  return {__index = function(_, name)
    error(spec.name .. ': no argument or key named ' .. tostring(name), 2)
  end}
end

-- A call's layout is as lua_layout writes it: its name, how many keys and arguments it
-- and each of its items take, and for the call and its items `read`, a function that
-- builds the table of one of them by name in a single constructor, each argument checked
-- for its kind as it is read ('n' a number, 'b' a boolean sent as "1"/"0", 's' a string).
-- (A loop over the names, growing a table a name at a time, cost most of a small call.)
-- These say what was wrong with a value it found.

local function missing(spec, name)
  error(spec.name .. ': ' .. name .. ' is missing')
end

local function not_a_number(spec, name, value)
  if value == nil then missing(spec, name) end
  error(spec.name .. ': ' .. name .. ' is not a number')
end

local function not_a_flag(spec, name, value)
  if value == nil then missing(spec, name) end
  error(spec.name .. ': ' .. name .. ' is not "1" or "0"')
end

-- The call's keys and header arguments by name, and in `count` how many items follow.
-- Keys or arguments that do not fit the layout (one missing, one too many) are an error.
local function read_call(spec, keys, args)
  local count, item = 0, spec.item
  if item then
    local per_item = item.arg_count > 0 and item.arg_count or item.key_count
    local extra = item.arg_count > 0 and (#args - spec.arg_count) or (#keys - spec.key_count)
    count = math.floor(extra / per_item)
    if extra < 0 or count * per_item ~= extra then count = -1 end
  end
  if count < 0 or #keys ~= spec.key_count + count * (item and item.key_count or 0)
      or #args ~= spec.arg_count + count * (item and item.arg_count or 0) then
    error(spec.name .. ': ' .. #keys .. ' keys and ' .. #args .. ' arguments do not fit its layout')
  end
  spec.strict = spec.strict or strict(spec)
  return setmetatable(spec.read(keys, args, 0, 0, spec, count), spec.strict)
end

-- Item n (from 1) of a call read with read_call, its keys and arguments by name.
local function read_item(spec, keys, args, n)
  local item = spec.item
  local key_base = spec.key_count + (n - 1) * item.key_count
  local arg_base = spec.arg_count + (n - 1) * item.arg_count
  return setmetatable(item.read(keys, args, key_base, arg_base, spec), spec.strict)
end

-- A reply, or a record within one, laid out in the order of its fields: a field without
-- a value, or a value of no field, is an error, never a hole or a value dropped.
local function reply(spec, values)
  local out = {}
  for i, name in ipairs(spec.names) do
    local value = values[name]
    if value == nil then error('a reply without ' .. name, 2) end
    out[i] = value
  end
  for name in pairs(values) do
    if not spec.known[name] then error('a reply with ' .. tostring(name) .. ', of no field', 2) end
  end
  return out
end

-- The fields of `text` between plain separators, empty ones kept: "a,,b" is three.
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

-- A family of keys (handlers/keys.py, written as a table of suffixes by name) under one
-- base: each name → base .. suffix, made the first time it is asked for (a call uses a few
-- of a family's names, and builds a family per customer).
local function keys_under(base, suffixes)
  return setmetatable({}, {__index = function(keys, name)
    local key = base .. suffixes[name]
    rawset(keys, name, key)
    return key
  end})
end
