"""What both peers do with an event, and how they write a batch: the naive agent's counters.

Imported inside the peers' own virtualenv, so it needs nothing but orjson and redis.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

# (profile hash key, counter field, event time); None for an event that fails the check.
Update = tuple[str, str, str] | None


def parse(value: bytes | None, prefix: str) -> Update:
    """The same minimal check the naive agent relies on: a JSON object naming its type, time,
    shop and customer (or anonymous shopper)."""
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    kind, time, shop = event.get("type"), event.get("time"), event.get("shop")
    who = event.get("subject") or event.get("anonymousid")
    if not (
        isinstance(kind, str)
        and isinstance(time, str)
        and isinstance(shop, str)
        and isinstance(who, str)
    ):
        return None
    return f"{prefix}:{{{shop}:{who}}}:p", kind.replace(".", "_"), time


def write(client: redis.Redis, prefix: str, updates: Iterable[Update], size: int) -> None:
    """One pipeline for a batch: the counters, then how many events the batch held (the
    harness watches ``<prefix>:peer:taken``)."""
    pipe = client.pipeline(transaction=False)
    invalid = 0
    for update in updates:
        if update is None:
            invalid += 1
            continue
        key, counter, time = update
        pipe.hincrby(key, counter, 1)
        pipe.hset(key, "last_seen", time)
    if invalid:
        pipe.incrby(f"{prefix}:peer:invalid", invalid)
    pipe.incrby(f"{prefix}:peer:taken", size)
    pipe.execute()
