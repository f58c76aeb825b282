"""Live segments (segments.lua), as calls: memberships, member lists, sizes and the change
outbox of a trigger shard, changed together by one call; one call takes every shard of a
hash slot (all of them, on one Redis).

A membership is a transition count: odd is in, even is out. The n-th transition of a
customer in a segment is what its change's id is made of, so a change keeps its id
however often the batch that caused it is delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from handlers.functions.contract import ITEMS, KEY, Call, Reply
from handlers.functions.library import Library
from handlers.functions.lua_layouts import lua_constants
from handlers.keys import SEGMENT_KEYS


@dataclass(frozen=True, slots=True)
class CustomerSegments:
    shard: str = field(metadata=KEY)  # their trigger shard's base: its keys share its hash tag
    shop: str
    customer: str
    as_of_ms: int  # when the memberships hold (the change's time)
    last_event_ms: int  # the customer's newest event in the batch; 0 for a pass
    flags: str  # a character per segment of the call: 1 in, 0 out, - not evaluated
    cause: str  # the event that changed the profile, or the pass
    forget: bool  # erased: their memberships go once they have left every segment


@dataclass(frozen=True, slots=True)
class SegmentsReply(Reply):
    changes: int  # memberships that changed


@dataclass(frozen=True, slots=True)
class ApplySegments(Call):
    """Each customer's memberships as flagged, in their own shard. The shards of one hash
    slot go in one call (on one Redis, every shard a batch touched)."""

    FUNCTION: ClassVar[str] = "crm_segments"
    LUA: ClassVar[str] = "apply"
    REPLY: ClassVar[type[Reply]] = SegmentsReply

    segments: str  # "id:version,…", in the order of each customer's flags
    customers: Sequence[CustomerSegments] = field(metadata=ITEMS)


LIBRARY: Final = Library.build(
    "crmstream_segments",
    ["segments.lua"],
    [ApplySegments],
    lua_constants("SEGMENT_KEYS", SEGMENT_KEYS._asdict()),
)
