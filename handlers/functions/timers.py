"""A partition's timing (timers.lua), as calls: absence timers, the decisions put off while
a worker was behind, and the arms and cancels that wait for the partition's event time.

Every call works on one partition's keys (handlers/keys.py PartitionKeys), all under the
hash tag "{p<n>}": a customer's events travel in partition n of every event topic, so
what is due for them depends on how far partition n has been read and nothing else. Only
the worker that owns the partition calls these (handlers/timing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Final

from handlers.functions.contract import ITEMS, KEY, Call, Reply
from handlers.functions.library import Library
from handlers.functions.lua_layouts import lua_constants
from handlers.keys import PartitionKeys


class Entry(StrEnum):
    """The first character of a timing entry's name: what it is."""

    ABSENCE = "t"  # an absence timer, in timers
    PUT_OFF = "e"  # an on-event decision put off, in later
    OP = "d"  # an arm, a cancel or an erasure, in ops: applied by the walk, in its turn
    # A journey's: an event for the customer's journeys, and the end of an instance's wait,
    # in timers (never in later: they do not hold the partition's decisions back).
    JOURNEY_EVENT = "j"
    JOURNEY_WAIT = "w"


class Op(StrEnum):
    """What an entry of ops does, the first line of its value."""

    ARM = "A"  # "A\n<timer>\n<rearm 1|0>\n<timer value>"
    CANCEL = "C"  # "C\n<timer>\n<at, ms>": only a timer it falls within the window of
    ERASE = "X"  # "X\n<timer>\n": the timer and the mark of when it was last armed


# Between a timer's name and its deadline, for a due timer kept under its own name, and
# after the prefix of the mark of when a timer was last armed.
SEPARATOR: Final = "\x1f"
ARMED_MARK: Final = "h" + SEPARATOR


@dataclass(frozen=True, slots=True)
class PutOff:
    member: str  # an Entry-prefixed name
    at_ms: int  # it waits until the partition's event time passes this
    value: bytes  # a timer's value ("<deadline>\n<armed at>\n<JSON>"), or an Op's


@dataclass(frozen=True, slots=True)
class Count(Reply):
    count: int


@dataclass(frozen=True, slots=True)
class Arm(Call):
    """Entries to put off: an Op entry goes to ops, an on-event decision to later, the
    rest (journeys') to timers."""

    FUNCTION: ClassVar[str] = "crm_arm"
    LUA: ClassVar[str] = "arm"
    REPLY: ClassVar[type[Reply]] = Count

    partition: PartitionKeys = field(metadata=KEY)
    entries: Sequence[PutOff] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class Fence:
    topic: str
    offset: str  # the next offset the walker last recorded; "" = none yet


@dataclass(frozen=True, slots=True)
class DueEntry(Reply):
    member: str
    value: bytes


@dataclass(frozen=True, slots=True)
class DueReply(Reply):
    entries: list[DueEntry]  # in event-time order, taken until the walker is done with them
    cut_short: bool  # the limit stopped the walk: more may be due
    state_lost: bool  # Redis holds older offsets than the fence: nothing was walked
    waiting: int  # decisions put off that still wait, taken ones included
    cancelled: int  # timers the cancels applied took away


@dataclass(frozen=True, slots=True)
class Due(Call):
    """What is due by ``now_ms``, walked in event-time order up to ``limit`` entries, by
    one walker at a time (holding the partition while it comes back within hold_ms)."""

    FUNCTION: ClassVar[str] = "crm_due"
    LUA: ClassVar[str] = "due"
    REPLY: ClassVar[type[Reply]] = DueReply

    partition: PartitionKeys = field(metadata=KEY)
    now_ms: int
    limit: int
    worker: str  # who walks
    hold_ms: int
    fence: Sequence[Fence] = field(metadata=ITEMS)  # what Redis must still hold


@dataclass(frozen=True, slots=True)
class Decided:
    member: str
    at_ms: int  # its deadline (or event time) as the walker read it


@dataclass(frozen=True, slots=True)
class Done(Call):
    """Entries the walker has decided: their triggers are in the outbox, or were refused."""

    FUNCTION: ClassVar[str] = "crm_done"
    LUA: ClassVar[str] = "done"
    REPLY: ClassVar[type[Reply]] = Count

    partition: PartitionKeys = field(metadata=KEY)
    decided: Sequence[Decided] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class LetGo(Call):
    """The partition was taken from ``worker``: its next owner walks at once."""

    FUNCTION: ClassVar[str] = "crm_let_go"
    LUA: ClassVar[str] = "let_go"
    REPLY: ClassVar[type[Reply]] = Count

    partition: PartitionKeys = field(metadata=KEY)
    worker: str


@dataclass(frozen=True, slots=True)
class Waking:
    member: str


@dataclass(frozen=True, slots=True)
class Wake(Call):
    """Timers brought forward to ``now_ms``, their values' deadline with them, so that the
    walker is handed them now, at now (a journey version that takes those in older ones
    out as it is published); one already due by then is left as it is."""

    FUNCTION: ClassVar[str] = "crm_wake"
    LUA: ClassVar[str] = "wake"
    REPLY: ClassVar[type[Reply]] = Count

    partition: PartitionKeys = field(metadata=KEY)
    now_ms: int
    members: Sequence[Waking] = field(metadata=ITEMS)


LIBRARY: Final = Library.build(
    "crmstream_timers",
    ["timers.lua"],
    [Arm, Due, Done, LetGo, Wake],
    "\n".join(
        [
            lua_constants("ENTRY", Entry),
            lua_constants("OP", Op),
            lua_constants("NAMES", {"SEPARATOR": SEPARATOR, "ARMED_MARK": ARMED_MARK}),
        ]
    ),
)
