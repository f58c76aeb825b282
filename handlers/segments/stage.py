"""The segment stage: memberships evaluated again for every profile in which a batch
changed something a segment reads (``watched``, handlers/profile/inputs.py).

Per batch: the profile call gives back those profiles as it leaves them (only the
sections the segment conditions read; a round trip reads any it did not), and one
round trip applies the memberships, shard by shard, in a Function call that also keeps
member lists and sizes and writes the change outbox (functions/segments.lua).
Memberships are as of now: who is in a segment is a question about the present,
whatever the time of the event that changed it.

Time alone moves the timed segments (days since the last order, sliding
windows): :meth:`SegmentStage.recheck` evaluates those again for the customers
active within the horizon, found through each shard's ``seen`` index.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from handlers.functions import FunctionLibrary
from handlers.functions.segments import LIBRARY, ApplySegments, CustomerSegments, SegmentsReply
from handlers.keys import Keys
from handlers.profile.inputs import built_from, watched_text
from handlers.profile.read import SECTIONS, ProfileReader, ReadBack, Stored, build_profile
from handlers.redis_client import RedisClient, slot_groups
from rules.activation import activation
from rules.expressions import Condition, ConditionError, read_together
from rules.segment_set import CompiledSegment, SegmentSet

log = logging.getLogger("crmstream.segments")

RECHECK_CAUSE: Final = "recheck"
_DAY_MS: Final = 86_400_000
_CHUNK: Final = 1000  # customers per round trip in a pass

Customer = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Touch:
    """What changed a profile last: its newest event in the batch (or the pass)."""

    last_event_ms: int  # 0: a pass, the customer did nothing
    cause: str


class SegmentStage:
    def __init__(
        self,
        client: RedisClient,
        *,
        keys: Keys,
        reader: ProfileReader,
        segments: SegmentSet,
        horizon_days: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.reader = reader
        self.segments = segments
        self._horizon_ms = horizon_days * _DAY_MS
        self.wall = wall  # the clock memberships are as of (tests set it)
        self._library = FunctionLibrary(client, LIBRARY, "segment")
        self.errors = 0  # conditions that could not be evaluated (logged)
        # Set when changes reach the outbox: its relay on this worker sends them at once.
        self.changed = asyncio.Event()
        # The segment set and what its conditions are built from (``watched``).
        self._watched: tuple[SegmentSet | None, str] = (None, "")

    @property
    def watched(self) -> str:
        """What of a profile the segments are built from, as the profile Function is told
        it (functions/profile.py ApplyBatch): a batch that changed none of it for a
        customer changed none of their memberships, except through the clock."""
        segments = self.segments
        if self._watched[0] is not segments:
            together = segments.together
            inputs = built_from(together.paths("profile")) if together else frozenset()
            self._watched = (segments, watched_text(inputs))
        return self._watched[1]

    @property
    def sections(self) -> frozenset[str]:
        """The profile sections the segments read (none without segments)."""
        if not self.segments.segments:
            return frozenset()
        sections = self.segments.sections
        return frozenset(SECTIONS if "*" in sections else sections)

    async def on_batch(
        self,
        touched: Mapping[Customer, tuple[int, str]],
        changed: Collection[Customer] | None = None,
        known: ReadBack | None = None,
    ) -> int:
        """Evaluate every segment for the customers a batch changed what they read of
        (``changed``; None: every customer touched); returns the changes. The others are
        only marked seen, for the recheck: time alone may still move them. ``known``:
        profiles read back already, as the batch left them."""
        if not self.segments.segments or not touched:
            return 0
        evaluated: dict[Customer, Touch] = {}
        seen: list[CustomerSegments] = []
        unevaluated = "-" * len(self.segments.positions)
        shard_of = self.keys.trigger_shard
        for (shop, who), (at_ms, event_id) in touched.items():
            touch = Touch(at_ms, event_id)
            if changed is None or (shop, who) in changed:
                evaluated[(shop, who)] = touch
            else:
                last = touch.last_event_ms
                seen.append(
                    CustomerSegments(
                        shard_of(shop, who), shop, who, last, last, unevaluated, event_id,
                        forget=False,
                    )
                )  # fmt: skip
        if evaluated:
            newest = max(touch.last_event_ms for touch in evaluated.values())
            # As of now; an event stamped ahead of this clock counts from its own time.
            now_ms = max(int(self.wall() * 1000), newest)
            return await self.evaluate(
                evaluated, self.segments.segments, now_ms, also=seen, known=known
            )
        return await self._apply(seen)

    async def evaluate(
        self,
        customers: Mapping[Customer, Touch],
        segments: Sequence[CompiledSegment],
        now_ms: int,
        *,
        also: Sequence[CustomerSegments] = (),
        known: ReadBack | None = None,
    ) -> int:
        """Memberships of ``customers`` as of ``now_ms``, written with ``also`` (customers
        only seen) in one round trip (two if ``known`` lacks some); returns the changes."""
        chosen = tuple(segments)
        wanted = self.sections
        reads = read_together([entry.condition for entry in chosen], "profile")
        fields = reads if isinstance(reads, dict) else None
        work = _Evaluation(chosen, self.segments.program(chosen), wanted, now_ms, fields)
        stored = await self.reader.read_stored(list(customers), wanted, known)
        entries = list(also)
        shard_of = self.keys.trigger_shard
        for (shop, who), touch in customers.items():
            state = stored.get((shop, who))
            flags = self._flags(shop, who, state, work)
            entries.append(
                CustomerSegments(
                    shard_of(shop, who), shop, who, now_ms, touch.last_event_ms, flags,
                    touch.cause, state is None,
                )
            )  # fmt: skip
        return await self._apply(entries)

    async def _apply(self, entries: Sequence[CustomerSegments]) -> int:
        """Memberships written in one round trip, a call per hash slot of their shards (one
        call on one Redis); returns the changes."""
        header = self.segments.header
        groups = slot_groups(self.client, [entry.shard for entry in entries])
        calls = [ApplySegments(header, [entries[at] for at in group]) for group in groups]
        replies: list[SegmentsReply] = await self._library.run(calls)
        changes = sum(reply.changes for reply in replies)
        if changes:
            self.changed.set()
        return changes

    def _flags(self, shop: str, who: str, stored: Stored | None, work: _Evaluation) -> str:
        """One character per segment of the set: 1 in, 0 out, - not evaluated (or failed)."""
        segments, now_ms = work.segments, work.now_ms
        positions = self.segments.positions
        flags = ["-"] * len(positions)
        if stored is None:  # erased, or merged into a customer: out of everything
            for entry in segments:
                flags[positions[entry.segment.id]] = "0"
            return "".join(flags)
        config = self.reader.config_of(shop)
        profile = build_profile(
            shop, who, now_ms, stored, config,
            sections=work.sections, for_conditions=True, fields=work.fields,
        )  # fmt: skip
        context = activation(None, profile, now_ms)
        program = work.program
        if program is not None:
            try:
                results = program.evaluate(context)
            except ConditionError:
                pass  # one of them fails: taken one by one below, to say which
            else:
                for entry, holds in zip(segments, results, strict=True):
                    flags[positions[entry.segment.id]] = "1" if holds is True else "0"
                return "".join(flags)
        for entry in segments:
            try:
                holds = entry.condition.holds(context)
            except ConditionError as exc:
                self.errors += 1
                log.warning("segment %s for %s/%s: %s", entry.segment.id, shop, who, exc)
                continue
            flags[positions[entry.segment.id]] = "1" if holds else "0"
        return "".join(flags)

    async def recheck_due(self, now_ms: int, every_s: float) -> RecheckReport:
        """The recheck of the shards no other worker has taken in this slot of ``every_s``."""
        every_ms = max(1, int(every_s * 1000))
        slot = now_ms // every_ms
        bases = self.keys.trigger_shards()
        claim = self.client.pipeline(transaction=False)
        for base in bases:
            claim.set(self.keys.segment_pass(base, slot), 1, nx=True, px=2 * every_ms)
        mine = [base for base, took in zip(bases, await claim.execute(), strict=True) if took]
        return await self.recheck(now_ms, mine) if mine else RecheckReport()

    async def recheck(self, now_ms: int, shards: Sequence[str] | None = None) -> RecheckReport:
        """Evaluate again, as of ``now_ms``, for every customer of the given shards (all by
        default) whose last event lies within the horizon: the timed segments, and those
        new or changed since the shard's last recheck (so a new segment fills up)."""
        report = RecheckReport()
        since = now_ms - self._horizon_ms
        for base in shards if shards is not None else self.keys.trigger_shards():
            versions = self.keys.segment_versions(base)
            covered = {
                _text(segment): int(version)
                for segment, version in (await self.client.hgetall(versions)).items()
            }
            fresh = [
                s for s in self.segments.segments if covered.get(s.segment.id) != s.segment.version
            ]
            chosen = tuple(s for s in self.segments.segments if s.timed or s in fresh)
            if not chosen:
                continue
            seen = self.keys.segment_seen(base)
            offset = 0
            while True:
                members = await self.client.zrange(
                    seen, since, "+inf", byscore=True, offset=offset, num=_CHUNK
                )
                if not members:
                    break
                offset += len(members)
                customers = {_customer(member): Touch(0, RECHECK_CAUSE) for member in members}
                report.changes += await self.evaluate(customers, chosen, now_ms)
                report.customers += len(customers)
            if fresh:
                await self.client.hset(
                    versions, mapping={s.segment.id: s.segment.version for s in fresh}
                )
        return report


@dataclass(frozen=True, slots=True)
class _Evaluation:
    """What every customer of one evaluation shares: worked out once, not per customer."""

    segments: tuple[CompiledSegment, ...]
    program: Condition | None  # all of them as one CEL call, when the set has one
    sections: frozenset[str]
    now_ms: int
    # What their conditions read of the profile, field by field (None: all of it).
    fields: Mapping[str, Collection[str]] | None


@dataclass(slots=True)
class RecheckReport:
    customers: int = 0
    changes: int = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _customer(member: object) -> Customer:
    """A ``seen`` member, "<shop>:<customer>" (ZRANGE without scores gives members alone)."""
    text = member.decode() if isinstance(member, bytes) else str(member)
    shop, _, who = text.partition(":")
    return shop, who
