"""The indexes schedules find customers through, kept up by the events themselves.

Per trigger shard: customers by birthday (month and day), every registered
customer (for holidays), customers by last order (dormancy) and by last
delivery (repurchase reminders); and customers by the keyed hash of their phone
number (the console finds them by it). An index may hold a stale entry (a changed
birthday, an erased customer); the scheduler checks each against the profile
and drops what no longer holds, so the events never need the old value.

An erasure also takes the customer's trigger state (functions/upkeep.lua erase): fired
ids, cooldowns, caps, conversion state, triggers held for quiet hours or not yet read
by the relay, index entries; and, in their turn, the customer's absence timers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crmstream.privacy import phone_hash
from handlers.functions.contract import Call
from handlers.functions.timers import PutOff
from handlers.functions.triggers import Erase, IndexPhones, Phone, ScheduleIndex
from handlers.keys import RELAY_GROUP, Keys
from handlers.redis_client import Arg
from handlers.timing.members import erase_op, timer_member
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


@dataclass
class IndexWork:
    """What a batch's events change in the indexes: plain writes, and Function calls (the
    phone index, erasures), sent with the batch's trigger work."""

    commands: list[tuple[Arg, ...]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # Per partition, the erasures of customers' timers, in their turn among its arms.
    timer_ops: defaultdict[int, list[PutOff]] = field(default_factory=lambda: defaultdict(list))


def index_updates(
    keys: Keys,
    events: Sequence[tuple[Envelope, int]],
    absence_rules: Iterable[str],
    hash_key: bytes | None = None,
) -> IndexWork:
    """``events``: each with the partition it was read from (where its timers live).
    ``hash_key`` hashes a phone number that came in clear, for the phone index."""
    absence = list(absence_rules)
    work = IndexWork()
    for event, partition in events:
        if event.subject is None or event.type not in INDEXED_TYPES:  # type: ignore[attr-defined]
            continue
        shop, customer = event.shop, event.subject
        base, who = keys.trigger_shard(shop, customer), f"{shop}:{customer}"
        match event:
            case CustomerRegistered() | CustomerUpdated():
                _index_facts(work, keys, event, hash_key)
            case OrderPlaced():
                dormant = keys.schedule_index(base, "dormant")
                work.commands.append(("ZADD", dormant, "GT", event.time_ms, who))
            case OrderDelivered():
                delivered = keys.schedule_index(base, "after_delivery")
                work.commands.append(("ZADD", delivered, "GT", event.time_ms, who))
            case CustomerErasureRequested():
                _erase(work, keys, event, partition, absence)
            case _:
                pass
    return work


def _index_facts(
    work: IndexWork,
    keys: Keys,
    event: CustomerRegistered | CustomerUpdated,
    hash_key: bytes | None,
) -> None:
    who = f"{event.shop}:{event.who}"
    base = keys.trigger_shard(event.shop, event.who)
    if isinstance(event, CustomerRegistered):
        work.commands.append(("SADD", keys.schedule_index(base, "holiday"), who))
    phone = event.data.phone_hash
    if phone is None and event.data.phone is not None and hash_key is not None:
        phone = phone_hash(hash_key, event.data.phone)
    if phone is not None:
        work.calls.append(IndexPhones(base, [Phone(who, phone)]))
    birthday = event.data.birthday
    if birthday is not None:
        mmdd = f"{birthday.month:02d}{birthday.day:02d}"
        work.commands.append(("SADD", keys.schedule_index(base, "birthday", mmdd), who))


def _erase(
    work: IndexWork,
    keys: Keys,
    event: CustomerErasureRequested,
    partition: int,
    absence: list[str],
) -> None:
    shop, customer = event.shop, event.who
    base = keys.trigger_shard(shop, customer)
    sets, sorted_sets = keys.erasure_indexes(base)
    indexes = [ScheduleIndex(key, is_set=True) for key in sets]
    indexes += [ScheduleIndex(key, is_set=False) for key in sorted_sets]
    work.calls.append(Erase(base, f"{shop}:{customer}", RELAY_GROUP, indexes))
    if absence:
        # The timers, their values and the marks of when each was last armed go in their
        # turn, after the arms and cancels before the erasure.
        at_ms = event.time_ms
        work.timer_ops[partition] += [
            erase_op(timer_member(rule, shop, customer), at_ms, event_id=event.id)
            for rule in absence
        ]
