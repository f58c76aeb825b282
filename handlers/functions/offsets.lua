-- The offsets a partition's state reflects (handlers/functions/offsets.py).

local function advance(keys, args)
  local call = read_call(ADVANCE, keys, args)
  local topics, differ, refused = {}, {}, {}
  for n = 1, call.count do
    local topic = read_item(ADVANCE, keys, args, n)
    topics[n] = topic
    local held = redis.call('HGET', topic.offsets, topic.topic) or ''
    if held ~= topic.expected then
      differ[#differ + 1] = reply(HELD, {partition = topic.partition, topic = topic.topic,
        held = held})
      refused[topic.offsets] = true
    end
  end
  for _, topic in ipairs(topics) do
    if not refused[topic.offsets] and topic.next ~= topic.expected then
      redis.call('HSET', topic.offsets, topic.topic, topic.next)
    end
  end
  return reply(ADVANCE_REPLY, {differ = differ})
end
