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
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from handlers.functions import FunctionLibrary
from handlers.functions.timers import LIBRARY as TIMER_LIBRARY
from handlers.functions.timers import PutOff, Wake, Waking
from handlers.functions.triggers import SEPARATOR
from handlers.journeys.store import CustomerJourneys, JourneyStore
from handlers.journeys.walk import CustomerWalk
from handlers.journeys.walking import Walking
from handlers.keys import Keys
from handlers.profile.encode import contact_free
from handlers.profile.read import SECTIONS, ProfileReader, ReadBack
from handlers.redis_client import RedisClient
from handlers.timing.members import (
    JOURNEY_EVENT,
    JOURNEY_WAIT,
    DueEntry,
    journey_event_member,
    journey_waits_pattern,
    parse_member,
    timer_value,
)
from handlers.triggers.samples import rule_samples
from rules.activation import event_view
from rules.expressions import ALL
from rules.journey_loader import CompiledJourney, JourneySet, compile_journey_file
from rules.shop_config import ShopConfig
from schemas.events import CustomerErasureRequested, Envelope

log = logging.getLogger("crmstream.journeys")

JOURNEY_KINDS: Final = frozenset({JOURNEY_EVENT, JOURNEY_WAIT})
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
        sent: asyncio.Event,
    ) -> None:
        self.store = store
        self.reader = reader
        self._arm = arm
        self._keys = keys
        self._client = client
        self._hash_key = hash_key
        self._sent = sent  # set when a send reaches the outbox: the relay goes at once
        self._timers = FunctionLibrary(client, TIMER_LIBRARY, "journeys")
        # Versions no longer loaded that someone is still in, compiled from what was kept.
        self._versions: dict[tuple[str, int], CompiledJourney] = {}
        # By shop: its config as last read, and the journeys it runs (asked per event).
        self._running: dict[str, tuple[ShopConfig, frozenset[str]]] = {}
        self._walking = Walking(
            journeys, store, reader.config_of, self.running, daily_cap, frozenset(),
            self._versions,
        )  # fmt: skip
        self._event_types: frozenset[str] = frozenset()
        self.use(journeys)

    def use(self, journeys: JourneySet) -> None:
        """Run these journeys from now on (a reload): instances of the versions before
        finish them, unless the new one says they leave."""
        self.journeys = journeys
        self._running.clear()
        self._sections = journey_sections(journeys.journeys)
        self._walking = replace(self._walking, journeys=journeys, sections=self._sections)
        types = frozenset(journeys.entering) | frozenset(journeys.awaited)
        self._event_types = types | {_ERASURE} if journeys.journeys else types
        self._archived = False
        # Versions whose file takes those in older ones out: woken on each partition once.
        self._woken: set[tuple[int, str]] = set()  # (partition, "<journey> US <version>")
        self._leaving = [
            (entry.journey, f"{entry.journey.id}{SEPARATOR}{entry.journey.version}")
            for entry in journeys.journeys
            if entry.journey.enabled and entry.journey.on_new_version == "exit"
            and entry.journey.version > 1
        ]  # fmt: skip

    def running(self, shop: str) -> frozenset[str]:
        """The journeys ``shop`` has turned on and this worker has."""
        config = self.reader.config_of(shop)
        known = self._running.get(shop)
        if known is None or known[0] is not config:
            known = (config, frozenset(config.journeys) & frozenset(self.journeys.by_id))
            self._running[shop] = known
        return known[1]

    def top_priority(self, shop: str) -> int | None:
        """The highest priority among the journeys ``shop`` runs (None: it runs none)."""
        by_id = self.journeys.by_id
        return max((by_id[name].journey.priority for name in self.running(shop)), default=None)

    async def wake_the_replaced(
        self, partitions: Sequence[int], now_of: Callable[[int], int]
    ) -> None:
        """A version saying ``on_new_version: exit`` takes those in older ones out as it is
        published, not at their next event or wait's end: every wait of the journey armed
        on these partitions (partition → its event time) is brought forward to now, once
        per version and partition, and the walk takes out those in older versions (those
        in the new one go back to waiting). A partition that changes hands before its
        owner woke it is woken by its next owner. ``now_of``: a partition's event time."""
        if not self._leaving:
            return  # every tick: nothing to do unless a version says so
        for partition in partitions:
            for journey, field in self._leaving:
                if (partition, field) in self._woken:
                    continue
                self._woken.add((partition, field))
                woken = self._keys.journey_wakes(partition)
                if await self._client.hexists(woken, field):
                    continue
                keys = self._keys.partition(partition)
                now_ms = now_of(partition)
                ahead = [
                    Waking(member.decode() if isinstance(member, bytes) else member)
                    async for member, score in self._client.zscan_iter(
                        keys.timers, match=journey_waits_pattern(journey.id), count=1000
                    )
                    if score > now_ms
                ]
                calls = [
                    Wake(keys, now_ms, ahead[start : start + 1000])
                    for start in range(0, len(ahead), 1000)
                ]
                if calls:
                    await self._timers.run(calls)
                await self._client.hset(woken, field, 1)
                log.info(
                    "journey %s version %d takes those in older versions out: %d waits on "
                    "partition %d woken", journey.id, journey.version, len(ahead), partition,
                )  # fmt: skip

    async def _archive(self) -> None:
        """The loaded versions kept as written, once: whoever enters one may finish it after
        the file has moved on."""
        if self._archived:
            return
        changed = await self.store.archive(self.journeys.journeys)
        for entry in changed:
            log.error(
                "journey %s version %d was changed without a new version number: everyone in "
                "it goes on by the file as it is now; give a changed journey a new version",
                entry.journey.id, entry.journey.version,
            )  # fmt: skip
        self._archived = True

    async def _load_versions(self, states: Mapping[tuple[str, str], CustomerJourneys]) -> None:
        """Compile the versions, no longer loaded, that the walk's instances are in."""
        loaded = {(e.journey.id, e.journey.version) for e in self.journeys.journeys}
        wanted = (
            {
                (held.position.journey, held.position.version)
                for state in states.values()
                for held in state.instances.values()
            }
            - loaded
            - set(self._versions)
        )
        for (journey, version), text in (await self.store.versions(wanted)).items():
            compiled, problems = compile_journey_file(
                f"{journey} version {version} (as kept)", rule_samples, text
            )
            if compiled is None:
                log.error("journey %s version %d as kept: %s", journey, version, problems)
                continue
            self._versions[(journey, version)] = compiled

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
            if not erasure and not self.running(event.shop):
                continue
            at_ms = event.time_ms
            # Kept in Redis until walked, as conditions see it: contact details only as
            # their keyed hashes. Kept whole, not trimmed to what the journeys read now: a
            # version published while it waits may read more of it.
            view = event_view(contact_free(event, self._hash_key))
            armed: dict[str, Any] = {"view": view, "partition": partition}
            if erasure:
                armed["erasure"] = True
            value = timer_value(at_ms, at_ms, armed)
            member = journey_event_member(event.shop, event.who, event.id)
            entries[partition].append(PutOff(member, at_ms, value))
        return entries

    # ------------------------------------------------------------------ the walk
    @property
    def sections(self) -> frozenset[str]:
        """What of the profile the journeys read."""
        return self._sections

    async def __call__(
        self, due: Sequence[DueEntry], known: ReadBack | None = None
    ) -> Counter[str]:
        """Walk the journey entries a partition walk handed over, in their order. ``known``:
        profiles read already for this walk (not read again)."""
        by_customer: dict[tuple[str, str], list[DueEntry]] = {}
        for entry in due:
            _kind, _name, shop, customer = parse_member(entry[0])
            by_customer.setdefault((shop, customer), []).append(entry)
        customers = list(by_customer)
        await self._archive()
        # The instances and the profiles, read side by side.
        states, profiles = await asyncio.gather(
            self.store.read_many(customers),
            self.reader.read_stored(customers, self._sections, known),
        )
        await self._load_versions(states)
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


def journey_sections(journeys: Sequence[CompiledJourney]) -> frozenset[str]:
    """The profile sections the journeys' conditions read, with the facts (consent, the
    time zone): building only those is most of what a walk costs a customer."""
    needed = {"facts"}
    for journey in journeys:
        conditions = [journey.entry, journey.key, *journey.exit_on, *journey.waits_for.values()]
        conditions += [case for cases in journey.cases.values() for case in cases]
        for condition in conditions:
            reads = condition.reads.get("profile", frozenset()) if condition else frozenset()
            if reads == ALL:
                return frozenset(SECTIONS)
            needed |= reads
    return frozenset(needed)
