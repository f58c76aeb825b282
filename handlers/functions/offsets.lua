-- The offsets a partition's state reflects (handlers/functions/offsets.py).

local function advance(keys, args)
  local call = read_call(ADVANCE, keys, args)
  local topics, differ = {}, {}
  for n = 1, call.count do
    local topic = read_item(ADVANCE, keys, args, n)
    topics[n] = topic
    local held = redis.call('HGET', call.offsets, topic.topic) or ''
    if held ~= topic.expected then
      differ[#differ + 1] = reply(HELD, {topic = topic.topic, held = held})
    end
  end
  if #differ == 0 then
    for _, topic in ipairs(topics) do
      if topic.next ~= topic.expected then
        redis.call('HSET', call.offsets, topic.topic, topic.next)
      end
    end
  end
  return reply(ADVANCE_REPLY, {differ = differ})
end
