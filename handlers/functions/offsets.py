"""The offsets a partition's state reflects (offsets.lua), as calls.

A batch's effects are written first and its offsets last: Redis persists and replicates
writes in order, so an offset it still holds never runs ahead of the state, and a Redis
that lost recent writes holds older offsets than the worker recorded (handlers/offsets.py
reads Kafka again from there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from handlers.functions.contract import ITEMS, KEY, Call, Reply
from handlers.functions.library import Library


@dataclass(frozen=True, slots=True)
class TopicOffsets:
    offsets: str = field(metadata=KEY)  # its partition's offsets hash: topic → next offset
    partition: int
    topic: str
    expected: str  # the next offset the worker last recorded; "" = none yet
    next: str  # the next offset now: equal to expected only checks


@dataclass(frozen=True, slots=True)
class Held(Reply):
    partition: int
    topic: str
    held: str  # what Redis holds instead: "" = nothing


@dataclass(frozen=True, slots=True)
class AdvanceReply(Reply):
    differ: list[Held]  # empty: every topic held what was expected, and the next is recorded


@dataclass(frozen=True, slots=True)
class Advance(Call):
    """For each partition whose topics all hold what the worker expects, record the next
    offsets; a partition where any of them holds otherwise is written nothing, and what
    it holds is said. Partitions of one hash slot (all of them, on one Redis) go in one
    call: a batch checks and records every partition it read."""

    FUNCTION: ClassVar[str] = "crm_advance"
    LUA: ClassVar[str] = "advance"
    REPLY: ClassVar[type[Reply]] = AdvanceReply

    topics: Sequence[TopicOffsets] = field(metadata=ITEMS)


LIBRARY: Final = Library.build("crmstream_offsets", ["offsets.lua"], [Advance])
