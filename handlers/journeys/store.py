"""A customer's journey instances in Redis (journeys.lua): read, and moved one stop at a
time, each stop one Function call with what it does (the send, the counts, the log)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from handlers.functions import FunctionLibrary
from handlers.functions.triggers import (
    ENTRIES_MARK,
    LIBRARY,
    SEPARATOR,
    Candidate,
    Decision,
    JourneyMove,
    JourneyMoved,
)
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from rules.journey_entry import Entries
from rules.journey_loader import CompiledJourney
from rules.journey_machine import Position

_SEP: Final = SEPARATOR.encode()
_DAY_MS: Final = 86_400_000


def encode_position(position: Position) -> bytes:
    return orjson.dumps(
        {
            "journey": position.journey, "version": position.version, "key": position.key,
            "instance": position.instance,
            "step": position.step, "visit": position.visit, "entered": position.entered_ms,
            "since": position.since_ms, "until": position.until_ms, "entry": position.entry,
            "matched": position.matched,
        }
    )  # fmt: skip


def decode_position(raw: bytes) -> Position:
    data: dict[str, Any] = orjson.loads(raw)
    return Position(
        journey=data["journey"], version=data["version"], key=data["key"],
        instance=data["instance"], step=data["step"],
        visit=data["visit"], entered_ms=data["entered"], since_ms=data["since"],
        until_ms=data["until"], entry=data["entry"], matched=data["matched"],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    """One instance as Redis holds it."""

    position: Position
    decision: Decision | None  # what the guards made of its send, when it stopped at one


def decode_stored(raw: bytes) -> Stored:
    _visit, decision, position = raw.split(_SEP, 2)
    return Stored(decode_position(position), Decision(decision.decode()) if decision else None)


@dataclass(frozen=True, slots=True)
class CustomerJourneys:
    instances: dict[tuple[str, str], Stored]  # by (journey, key)
    entries: dict[str, Entries]  # by journey


class JourneyStore:
    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        *,
        fired_window_days: int,
        log_size: int,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """``wall_ms``: what the guards and the log go by (the clock live, a backtest's
        event time)."""
        self._client = client
        self._wall_ms = wall_ms
        self._keys = keys
        self._library = FunctionLibrary(client, LIBRARY, "journeys")
        self._window_ms = fired_window_days * _DAY_MS
        self._log_size = log_size

    async def read(self, shop: str, customer: str) -> CustomerJourneys:
        return await read_customer_journeys(self._client, self._keys, shop, customer)

    async def read_many(
        self, customers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], CustomerJourneys]:
        """Each customer's journeys, in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for shop, customer in customers:
            pipe.hgetall(self._keys.journeys(shop, customer))
        found = await pipe.execute() if customers else []
        return {who: _journeys_of(raw) for who, raw in zip(customers, found, strict=True)}

    def call(
        self,
        shop: str,
        customer: str,
        before: Position | None,
        after: Position | None,
        *,
        at_ms: int,
        counted: Sequence[str] = (),
        why: bytes = b"",
        send: Candidate | None = None,
        goal: tuple[str, int] = ("", 0),
        control: bool = False,
        passing: Position | None = None,
    ) -> JourneyMove:
        """The call that moves one instance from ``before`` (None: it enters) to ``after``
        (None: it leaves); ``at_ms`` is the event time the move is made at; ``goal``, the
        journey's (key, window in ms), opened when the instance enters; ``control``: the
        move takes the holdout path; ``passing``: where an instance that enters and leaves
        in this one move was when it left."""
        moved = after if after is not None else before if before is not None else passing
        if moved is None:
            raise ValueError("a move needs a position before or after it")
        return JourneyMove(
            shard=self._keys.trigger_shard(shop, customer),
            who=f"{shop}:{customer}",
            journey=moved.journey,
            version=moved.version,
            key=moved.key,
            instance=moved.instance,
            expected_visit=0 if before is None else before.visit,
            visit=0 if after is None else after.visit,
            position=b"" if after is None else encode_position(after),
            entered=before is None,
            counted="\n".join(counted),
            why=why,
            at_ms=at_ms,
            now_ms=self._wall_ms(),
            fired_window_ms=self._window_ms,
            log_size=self._log_size,
            goal_key=goal[0],
            goal_window_ms=goal[1],
            entered_ms=moved.entered_ms,
            control=control,
            send=[] if send is None else [send],
        )

    async def archive(self, journeys: Iterable[CompiledJourney]) -> list[CompiledJourney]:
        """Each version as written when first loaded, kept for those who enter it: a version
        is immutable. Returns those whose file now says otherwise than what was kept."""
        entries = list(journeys)
        pipe = self._client.pipeline(transaction=False)
        for entry in entries:
            pipe.hsetnx(self._keys.journey_versions, _version_field(entry), entry.text)
        for entry in entries:
            pipe.hget(self._keys.journey_versions, _version_field(entry))
        replies = await pipe.execute() if entries else []
        kept = replies[len(entries) :]
        return [
            entry for entry, text in zip(entries, kept, strict=True) if _text(text) != entry.text
        ]

    async def versions(self, wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The kept text of each (journey, version) wanted that is kept."""
        keys = list(wanted)
        if not keys:
            return {}
        fields = [f"{journey}{SEPARATOR}{version}" for journey, version in keys]
        found = await self._client.hmget(self._keys.journey_versions, fields)
        return {key: _text(text) for key, text in zip(keys, found, strict=True) if text is not None}

    async def run(self, calls: Sequence[JourneyMove]) -> list[JourneyMoved]:
        """The calls in one round trip; each reply says whether it moved."""
        replies: list[JourneyMoved] = await self._library.run(calls)
        return replies


async def read_customer_journeys(
    client: RedisClient, keys: Keys, shop: str, customer: str
) -> CustomerJourneys:
    """The customer's journey instances and entries (the export and the console read it)."""
    return _journeys_of(await client.hgetall(keys.journeys(shop, customer)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _journeys_of(raw: Mapping[bytes | str, bytes | str]) -> CustomerJourneys:
    instances: dict[tuple[str, str], Stored] = {}
    entries: dict[str, Entries] = {}
    for slot, value in raw.items():
        journey, key = _text(slot).split(SEPARATOR, 1)
        if key == ENTRIES_MARK:
            count, last = _text(value).split(SEPARATOR)
            entries[journey] = Entries(int(count), int(last))
        else:
            instances[(journey, key)] = decode_stored(_bytes(value))
    return CustomerJourneys(instances, entries)


def _version_field(entry: CompiledJourney) -> str:
    return f"{entry.journey.id}{SEPARATOR}{entry.journey.version}"
