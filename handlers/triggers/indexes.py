"""The indexes schedules find customers through, kept up by the events themselves.

Per trigger shard: customers by birthday (month and day), every registered
customer (for holidays), customers by last order (dormancy) and by last
delivery (repurchase reminders); and customers by the keyed hash of their phone
number (the console finds them by it). An index may hold a stale entry (a changed
birthday, an erased customer); the scheduler checks each against the profile
and drops what no longer holds, so the events never need the old value.

An erasure also takes the customer's trigger state (lua/triggers.lua erase): fired
ids, cooldowns, caps, conversion state, triggers held for quiet hours or not yet read
by the relay, index entries; and, in their turn, the customer's absence timers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from crmstream.privacy import phone_hash
from handlers.functions.library import queue_call
from handlers.functions.timers import LIBRARY as TIMER_LIBRARY
from handlers.functions.timers import Arm
from handlers.keys import RELAY_GROUP, TRIGGER_SUFFIXES_ARG, Keys
from handlers.profile.encode import epoch_ms
from handlers.redis_client import fcall
from handlers.scripts import ERASE, INDEX_PHONES
from handlers.triggers.members import erase_op, timer_member
from schemas.events import (
    CustomerErasureRequested,
    CustomerRegistered,
    CustomerUpdated,
    Envelope,
    OrderDelivered,
    OrderPlaced,
)

INDEXED_TYPES = frozenset(
    {
        "customer.registered",
        "customer.updated",
        "order.placed",
        "order.delivered",
        "customer.erasure_requested",
    }
)


def queue_index_updates(
    pipe: Any,  # noqa: ANN401 -- a redis-py pipeline
    keys: Keys,
    events: Sequence[tuple[Envelope, int]],
    absence_rules: Iterable[str],
    hash_key: bytes | None = None,
) -> None:
    """``events``: each with the partition it was read from (where its timers live).
    ``hash_key`` hashes a phone number that came in clear, for the phone index."""
    absence = list(absence_rules)
    for event, partition in events:
        if event.subject is None or event.type not in INDEXED_TYPES:  # type: ignore[attr-defined]
            continue
        shop, customer = event.shop, event.subject
        base, who = keys.trigger_shard(shop, customer), f"{shop}:{customer}"
        match event:
            case CustomerRegistered() | CustomerUpdated():
                _index_facts(pipe, keys, event, hash_key)
            case OrderPlaced():
                pipe.zadd(
                    keys.schedule_index(base, "dormant"), {who: epoch_ms(event.time)}, gt=True
                )
            case OrderDelivered():
                at = epoch_ms(event.time)
                pipe.zadd(keys.schedule_index(base, "after_delivery"), {who: at}, gt=True)
            case CustomerErasureRequested():
                _erase(pipe, keys, event, partition, absence)
            case _:
                pass


def _index_facts(
    pipe: Any,  # noqa: ANN401 -- a redis-py pipeline
    keys: Keys,
    event: CustomerRegistered | CustomerUpdated,
    hash_key: bytes | None,
) -> None:
    who = f"{event.shop}:{event.who}"
    base = keys.trigger_shard(event.shop, event.who)
    if isinstance(event, CustomerRegistered):
        pipe.sadd(keys.schedule_index(base, "holiday"), who)
    phone = event.data.phone_hash
    if phone is None and event.data.phone is not None and hash_key is not None:
        phone = phone_hash(hash_key, event.data.phone)
    if phone is not None:
        fcall(pipe, INDEX_PHONES, [base], TRIGGER_SUFFIXES_ARG, who, phone)
    birthday = event.data.birthday
    if birthday is not None:
        mmdd = f"{birthday.month:02d}{birthday.day:02d}"
        pipe.sadd(keys.schedule_index(base, "birthday", mmdd), who)


def _erase(
    pipe: Any,  # noqa: ANN401 -- a redis-py pipeline
    keys: Keys,
    event: CustomerErasureRequested,
    partition: int,
    absence: list[str],
) -> None:
    shop, customer = event.shop, event.who
    base = keys.trigger_shard(shop, customer)
    sets, sorted_sets = keys.erasure_indexes(base)
    erasure_keys = [base, *sets, *sorted_sets]
    fcall(
        pipe, ERASE, erasure_keys,
        TRIGGER_SUFFIXES_ARG, f"{shop}:{customer}", RELAY_GROUP, len(sets),
    )  # fmt: skip
    if absence:
        # The timers, their values and the marks of when each was last armed go in their
        # turn, after the arms and cancels before the erasure.
        at_ms = epoch_ms(event.time)
        ops = [erase_op(timer_member(rule, shop, customer), at_ms, event_id=event.id)
               for rule in absence]  # fmt: skip
        queue_call(pipe, TIMER_LIBRARY, Arm(keys.partition(partition), ops))
