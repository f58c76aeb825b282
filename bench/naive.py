"""The naive baseline: a Faust agent that updates counters with one Redis round trip per event.

This is what most tutorials write; it exists here only to be measured against.
Run by bench.profiles as ``python -m bench.naive`` with CRMSTREAM_* settings.
"""

from __future__ import annotations

import faust
import orjson
import redis.asyncio

from crmstream.settings import Settings
from crmstream.topics import TopicNames
from streams.app import create_app


def main() -> None:
    settings = Settings()
    app = create_app(settings)
    names = TopicNames.from_settings(settings.topics)
    topic = app.topic(*names.events, value_type=bytes, value_serializer="raw")
    client = redis.asyncio.Redis.from_url(str(settings.redis.url))
    prefix = settings.redis.key_prefix

    async def count(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            event = orjson.loads(value)
            key = (
                f"{prefix}:{{{event['shop']}:{event.get('subject') or event.get('anonymousid')}}}:p"
            )
            counter = event["type"].replace(".", "_")
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(key, counter, 1)
            pipe.hset(key, "last_seen", event["time"])
            pipe.incr(f"{prefix}:naive:taken")
            await pipe.execute()  # one round trip per event

    app.agent(topic, name="naive")(count)
    faust.Worker(app, loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
