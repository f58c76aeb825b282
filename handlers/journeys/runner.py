"""Journeys in the worker: their events put off until the partition's event time passes
them, then walked with the instances' waits in event-time order (handlers/timing), each
customer's moved by the step machine one stop at a time.

Each customer's walk (handlers/journeys/walk.py) is a generator of Function calls
(handlers/journeys/store.py), one per stop, each answered before the next: a send's
outcome, which the guards decide in Redis, says where the journey goes on. All
customers' calls of one round go in one round trip. A stop refused (the instance was not
where it was read: a walk a dead worker began) is taken up from where Redis holds it, so
a walk done twice moves nothing twice. An erasure, walked in its turn, takes the
customer's instances and their waits.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from handlers.functions.timers import PutOff
from handlers.journeys.store import JourneyStore
from handlers.journeys.walk import CustomerWalk, Walking
from handlers.keys import Keys
from handlers.profile.encode import contact_free, epoch_ms
from handlers.profile.read import SECTIONS, ProfileReader
from handlers.redis_client import RedisClient
from handlers.timing.members import (
    JOURNEY_EVENT,
    JOURNEY_WAIT,
    DueEntry,
    journey_event_member,
    parse_member,
    timer_value,
)
from rules.journey_loader import JourneySet
from schemas.decode import Decoder
from schemas.events import CustomerErasureRequested, Envelope

JOURNEY_KINDS: Final = frozenset({JOURNEY_EVENT, JOURNEY_WAIT})
_NO_LIMIT: Final = datetime.max.replace(tzinfo=UTC)
_ERASURE: Final = "customer.erasure_requested"

Arm = Callable[[Mapping[int, Sequence[PutOff]]], Awaitable[None]]


class JourneyRunner:
    def __init__(
        self,
        journeys: JourneySet,
        store: JourneyStore,
        reader: ProfileReader,
        arm: Arm,
        *,
        keys: Keys,
        client: RedisClient,
        daily_cap: int,
        hash_key: bytes | None,
        wall_ms: Callable[[], int],
        sent: asyncio.Event,
    ) -> None:
        self.journeys = journeys
        self.store = store
        self.reader = reader
        self._arm = arm
        self._keys = keys
        self._client = client
        self._hash_key = hash_key
        self._sent = sent  # set when a send reaches the outbox: the relay goes at once
        self._decoder = Decoder()
        self._walking = Walking(
            journeys, store, reader.config_of, daily_cap, wall_ms, self._decode_event
        )
        self._event_types = frozenset(journeys.entering) | frozenset(journeys.awaited)
        if journeys.journeys:
            self._event_types |= {_ERASURE}

    # ------------------------------------------------------------------ the batch
    def put_off(
        self, events: Sequence[Envelope], partitions: Sequence[int]
    ) -> dict[int, list[PutOff]]:
        """The batch's events some journey of their shop's listens to, put off until their
        partition's event time passes them; and every erasure, whichever journeys its shop
        runs now (one it ran before may have left the customer in it)."""
        entries: defaultdict[int, list[PutOff]] = defaultdict(list)
        if not self._event_types:
            return entries
        for event, partition in zip(events, partitions, strict=True):
            kind: str = event.type  # type: ignore[attr-defined]  # every concrete event has one
            if event.subject is None or kind not in self._event_types:
                continue
            erasure = isinstance(event, CustomerErasureRequested)
            if not erasure and not self._walking.runs(self.reader.config_of(event.shop)):
                continue
            at_ms = epoch_ms(event.time)
            # Kept in Redis until walked: contact details only as their keyed hashes.
            kept = contact_free(event, self._hash_key).model_dump_json()
            armed: dict[str, Any] = {"event": kept, "partition": partition}
            if erasure:
                armed["erasure"] = True
            value = timer_value(at_ms, at_ms, armed)
            member = journey_event_member(event.shop, event.who, event.id)
            entries[partition].append(PutOff(member, at_ms, value))
        return entries

    # ------------------------------------------------------------------ the walk
    async def __call__(self, due: Sequence[DueEntry]) -> Counter[str]:
        """Walk the journey entries a partition walk handed over, in their order."""
        by_customer: dict[tuple[str, str], list[DueEntry]] = {}
        for entry in due:
            _kind, _name, shop, customer = parse_member(entry[0])
            by_customer.setdefault((shop, customer), []).append(entry)
        customers = list(by_customer)
        states = await self.store.read_many(customers)
        profiles = await self.reader.read_stored(customers, SECTIONS)
        outcomes: Counter[str] = Counter()
        walks = {
            who: CustomerWalk(self._walking, *who, states[who], profiles.get(who), outcomes)
            for who in customers
        }
        running = {who: walk.run(by_customer[who]) for who, walk in walks.items()}
        pending = {who: next(moves, None) for who, moves in running.items()}
        while any(call is not None for call in pending.values()):
            order = [who for who, call in pending.items() if call is not None]
            replies = await self.store.run([pending[who] for who in order])  # type: ignore[misc]  # the Nones are left out
            for who, reply in zip(order, replies, strict=True):
                try:
                    pending[who] = running[who].send(reply)
                except StopIteration:
                    pending[who] = None
        if outcomes["journey_sent"]:
            self._sent.set()
        arms: defaultdict[int, list[PutOff]] = defaultdict(list)
        for walk in walks.values():
            for partition, wait in walk.waits():
                arms[partition].append(wait)
        if arms:
            await self._arm(arms)
        await self._erase([walk for walk in walks.values() if walk.erased])
        return outcomes

    async def _erase(self, walks: Sequence[CustomerWalk]) -> None:
        """The erased customers' journeys, and the waits armed for them, go."""
        if not walks:
            return
        pipe = self._client.pipeline(transaction=False)
        for walk in walks:
            pipe.delete(self._keys.journeys(walk.shop, walk.customer))
            for partition, member in walk.erased_waits():
                keys = self._keys.partition(partition)
                pipe.zrem(keys.timers, member)
                pipe.zrem(keys.taken, member)
                pipe.hdel(keys.payloads, member)
        await pipe.execute()

    def _decode_event(self, armed: Mapping[str, Any]) -> Envelope | None:
        decoded = self._decoder.decode(str(armed["event"]).encode(), None, None, _NO_LIMIT)
        return decoded if isinstance(decoded, Envelope) else None
