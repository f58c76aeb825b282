"""What the engine's Redis holds, as a test reads it: how far the workers got, what is
still put off, and where a string sits in keys or values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis

from crmstream.settings import Settings
from handlers.flow import DUPLICATE, events_taken, flow_counts
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from tests.support import text


def taken(settings: Settings) -> int:
    """Events the workers have taken in, repeats included (the flow counters); -1 while
    Redis does not answer, so that a wait on it goes on rather than breaks."""
    counts = _flow(settings)
    return -1 if counts is None else events_taken(counts)


def applied(settings: Settings) -> int:
    """Distinct events the workers have applied: taken in, less those found to be repeats
    (a redelivery, or a batch read again after a crash); -1 while Redis does not answer."""
    counts = _flow(settings)
    if counts is None:
        return -1
    return events_taken(counts) - sum(n for name, n in counts.items() if name.startswith(DUPLICATE))


def _flow(settings: Settings) -> Counter[str] | None:
    try:
        client = connect_sync(settings.redis)
        try:
            return flow_counts(client.hgetall(Keys(settings.redis.key_prefix).flow))
        finally:
            client.close()
    except redis.RedisError:
        return None


def put_off(settings: Settings) -> int:
    """Decisions put off while the workers were behind, over every partition, counting
    those handed to a walker and not yet done: 0 once every one of them has been made."""
    keys = Keys(settings.redis.key_prefix)
    client = connect_sync(settings.redis)
    try:
        return sum(
            int(client.zcard(timing.later)) + int(client.zcard(timing.taken))
            for timing in map(keys.partition, range(settings.topics.event_partitions))
        )
    finally:
        client.close()


def redis_holding(settings: Settings, needles: Iterable[bytes]) -> dict[str, list[str]]:
    """Every key of a test (its prefix) whose name or value holds one of ``needles``:
    needle → the keys, values read whole, whatever the type."""
    wanted = list(needles)
    found: dict[str, list[str]] = {}
    client = connect_sync(settings.redis)
    try:
        pattern = Keys(settings.redis.key_prefix).pattern()
        for raw_key in client.scan_iter(match=pattern, count=1000):
            key = bytes(raw_key)
            blob = key + b"\0" + _value_bytes(client, key)
            for needle in wanted:
                if needle in blob:
                    found.setdefault(needle.decode(errors="replace"), []).append(text(key))
    finally:
        client.close()
    return found


def _value_bytes(client: Any, key: bytes) -> bytes:
    kind = text(client.type(key))
    parts: list[Any]
    if kind == "string":
        parts = [client.get(key) or b""]
    elif kind == "hash":
        parts = [item for pair in client.hgetall(key).items() for item in pair]
    elif kind == "set":
        parts = list(client.smembers(key))
    elif kind == "zset":
        parts = list(client.zrange(key, 0, -1))
    elif kind == "list":
        parts = list(client.lrange(key, 0, -1))
    elif kind == "stream":
        parts = [
            item for _id, fields in client.xrange(key) for pair in fields.items() for item in pair
        ]
    else:
        parts = []
    return b"\0".join(part if isinstance(part, bytes) else str(part).encode() for part in parts)
