"""The offsets a partition's state reflects (offsets.lua), as calls.

A batch's effects are written first and its offsets last: Redis persists and replicates
writes in order, so an offset it still holds never runs ahead of the state, and a Redis
that lost recent writes holds older offsets than the worker recorded (handlers/offsets.py
reads Kafka again from there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from handlers.functions.contract import Call, Reply, items, key
from handlers.functions.library import Library


@dataclass(frozen=True, slots=True)
class TopicOffsets:
    topic: str
    expected: str  # the next offset the worker last recorded; "" = none yet
    next: str  # the next offset now: equal to expected only checks


@dataclass(frozen=True, slots=True)
class Held(Reply):
    topic: str
    held: str  # what Redis holds instead: "" = nothing


@dataclass(frozen=True, slots=True)
class AdvanceReply(Reply):
    differ: list[Held]  # empty: every topic held what was expected, and the next is recorded


@dataclass(frozen=True, slots=True)
class Advance(Call):
    """If every topic of a partition holds what the worker expects, record the next offsets;
    else write nothing and say what Redis holds."""

    FUNCTION: ClassVar[str] = "crm_advance"
    LUA: ClassVar[str] = "advance"
    REPLY: ClassVar[type[Reply]] = AdvanceReply

    offsets: str = key()  # the partition's offsets hash: topic → the next offset to read
    topics: Sequence[TopicOffsets] = items()


LIBRARY: Final = Library.build("crmstream_offsets", ["offsets.lua"], [Advance])
