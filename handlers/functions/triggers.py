"""Triggers (triggers.lua and its parts), as calls: the shared guards and the outbox, held
triggers, conversions, the phone index, erasure, and journey moves.

Every call works on one trigger shard: ``shard`` is its base ("<prefix>:{t<n>}:"), whose
hash tag keeps all its keys in one Redis Cluster slot; a customer always falls in the
same shard, and their keys continue the family's suffix with "<shop>:<customer>"
(handlers/keys.py TriggerKeys). Because the dedup mark, the cooldown, the cap and the
outbox entry are written by one call, a trigger either exists completely or not at all:
that is the outbox half of delivery; the relay (streams/relay.py) is the other half.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Final

from handlers.functions.contract import ITEMS, KEY, Call, Reply
from handlers.functions.library import Library
from handlers.functions.lua_layouts import lua_constants
from handlers.keys import TRIGGER_KEYS
from rules.lift import CONVERTED, CONVERTED_HOLDOUT


class Decision(StrEnum):
    """What the guards made of a candidate."""

    SENT = "sent"
    HELD = "held"  # for the customer's quiet hours, sent when they end (release)
    DUPLICATE = "duplicate"  # this occurrence was decided before
    EXPIRED = "expired"  # decided later than its max_age: recorded, not sent
    COOLDOWN = "cooldown"
    CAPPED = "capped"
    SKIPPED = "skipped"  # consent refused every channel


class Logged(StrEnum):
    """The outcome a decision-log entry records (the console and the export read it)."""

    SENT = "sent"
    HELD = "held"
    RELEASED = "released"
    HOLDOUT = "holdout"  # in the holdout group: decided, not sent
    EXPIRED = "expired"
    COOLDOWN = "cooldown"
    CAPPED = "capped"
    CONSENT = "consent"
    JOURNEY = "journey"  # a journey instance left: why is in the entry


# Between the parts of a stats field, a goal event, an open goal and a decision-log entry.
SEPARATOR: Final = "\x1f"
# A suppressed occurrence is kept among the fired ids as "<outcome>:<trigger id>".
SUPPRESSED_MARK: Final = ":"
# A customer's journeys hash: "<journey> US <key>" → "<visit> US <decision> US <position>",
# and "<journey> US #" → "<entries> US <last entry, ms>".
ENTRIES_MARK: Final = "#"
# An instance made is kept among the customer's fired ids as "J:<journey> US <instance>".
ENTERED_MARK: Final = "J:"
# A journey's sends are counted among the rules' stats as "journey:<journey>:<version>:<step>",
# and its instances' goal as "journey:<journey>:<version>": entered (or holdout, the control
# path taken) and what converted, as for a rule.
JOURNEY_STATS_PREFIX: Final = "journey:"
JOURNEY_ENTERED: Final = "entered"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trigger the rules want, before the shared guards (emit.lua)."""

    trigger_id: str
    who: str  # "shop:customer": the outbox key, and the customer's part of the guard keys
    rule_id: str
    at_ms: int  # the occurrence's time
    cooldown_ms: int
    channel: str  # "" when consent refused it: counted as suppressed, nothing sent
    # The send gate (rules/send_gate.py Slot): the customer's local day as a day number
    # (0: a service message, no caps), its channel's caps, and the shop's window.
    cap_day: int
    day_cap: int
    week_cap: int  # 0: none
    gate_window_ms: int
    priority: int  # who takes the last slot of a day or week: the higher
    release_at_ms: int  # 0: now; else the end of the customer's quiet hours
    payload: bytes  # the trigger's message
    holdout: bool = False  # published as held out, for the lift
    goal_key: str = ""  # what converts it (rules/loader.py GoalSpec), within goal_window_ms
    goal_window_ms: int = 0
    expires_at_ms: int = 0  # decided after this, it is recorded as expired (0: never)
    why: bytes = b"{}"  # the decision log's account of it (handlers/triggers/decisions.py)


@dataclass(frozen=True, slots=True)
class EmitReply(Reply):
    decisions: list[Decision]  # one per candidate, in order


@dataclass(frozen=True, slots=True)
class Emit(Call):
    """The guards, then the outbox (or the held set) for every candidate that passes."""

    FUNCTION: ClassVar[str] = "crm_emit"
    LUA: ClassVar[str] = "emit"
    REPLY: ClassVar[type[Reply]] = EmitReply

    shard: str = field(metadata=KEY)
    fired_window_ms: int  # how long a trigger id (and a decision log) is remembered
    now_ms: int  # when this is decided
    log_size: int  # decisions kept per customer
    candidates: Sequence[Candidate] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class Released(Reply):
    released: int


@dataclass(frozen=True, slots=True)
class Release(Call):
    """Held triggers whose quiet hours are over by ``now_ms`` go to the outbox."""

    FUNCTION: ClassVar[str] = "crm_release"
    LUA: ClassVar[str] = "release"
    REPLY: ClassVar[type[Reply]] = Released

    shard: str = field(metadata=KEY)
    now_ms: int
    limit: int
    log_size: int
    fired_window_ms: int


@dataclass(frozen=True, slots=True)
class GoalEvent:
    who: str
    goal: str  # the goal's key (rules/loader.py GoalSpec)
    at_ms: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Converted(Reply):
    converted: int


@dataclass(frozen=True, slots=True)
class Goals(Call):
    """Goal events: each converts the open triggers of its goal it falls within the window
    of (after the trigger, within its window), once; a goal event seen before is skipped."""

    FUNCTION: ClassVar[str] = "crm_goals"
    LUA: ClassVar[str] = "goals"
    REPLY: ClassVar[type[Reply]] = Converted

    shard: str = field(metadata=KEY)
    widest_ms: int  # the widest goal window of the rules
    events: Sequence[GoalEvent] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class Phone:
    who: str
    phone: str  # the keyed hash of the number


@dataclass(frozen=True, slots=True)
class Indexed(Reply):
    indexed: int


@dataclass(frozen=True, slots=True)
class IndexPhones(Call):
    """A customer found by the keyed hash of their phone; their previous number forgotten."""

    FUNCTION: ClassVar[str] = "crm_phones"
    LUA: ClassVar[str] = "index_phones"
    REPLY: ClassVar[type[Reply]] = Indexed

    shard: str = field(metadata=KEY)
    phones: Sequence[Phone] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class ScheduleIndex:
    key: str = field(metadata=KEY)  # one of the shard's indexes that may hold the customer
    is_set: bool  # a set (birthdays, registered), else a sorted set (dormancy, delivery)


@dataclass(frozen=True, slots=True)
class Withdrawn(Reply):
    withdrawn: int  # triggers held or not yet relayed that went with the customer


@dataclass(frozen=True, slots=True)
class Erase(Call):
    """An erasure: the customer's fired ids, cooldowns, caps, conversion state, decision log
    and phone entry go; so do their triggers held for quiet hours, those in the outbox the
    relay has not read yet, and every index entry. Safe to repeat."""

    FUNCTION: ClassVar[str] = "crm_erase"
    LUA: ClassVar[str] = "erase"
    REPLY: ClassVar[type[Reply]] = Withdrawn

    shard: str = field(metadata=KEY)
    who: str
    relay_group: str  # the consumer group the relays read the outbox with
    indexes: Sequence[ScheduleIndex] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class JourneyMoved(Reply):
    moved: bool  # False: the instance was not where the caller read it
    decision: Decision | None  # the send's, when the move sent
    stored: bytes | None  # the instance's record when the move was refused (None: none)


@dataclass(frozen=True, slots=True)
class JourneyMove(Call):
    """One journey instance's move (journeys.lua), from ``expected_visit`` (0: no
    instance) to ``visit`` with ``position`` (b"": it leaves), sending ``send`` (none, or
    one) through the guards on the way. The position lives in the customer's shard, so
    the move and what it does are one write; a move worked out twice finds the instance
    moved on and changes nothing (the reply gives where it is)."""

    FUNCTION: ClassVar[str] = "crm_journey_move"
    LUA: ClassVar[str] = "journey_move"
    REPLY: ClassVar[type[Reply]] = JourneyMoved

    shard: str = field(metadata=KEY)
    who: str  # "shop:customer"
    journey: str
    version: int
    key: str  # the instance's ("" unless keyed)
    instance: str  # the id of the event that entered it: an entry is made once
    expected_visit: int
    visit: int
    position: bytes  # what the caller keeps of the instance (JSON)
    # A new instance: made once for its entry event, and counted among the customer's
    # entries into the journey.
    entered: bool
    counted: str  # the journey's stats this move adds to, one a line ("-name" takes one off)
    why: bytes  # the decision log's account of the move (b"": nothing logged)
    at_ms: int  # the event time the move is made at
    now_ms: int  # the wall clock: what the guards and the log go by
    fired_window_ms: int
    log_size: int
    # The journey's goal, opened for a new instance from its entry (entered_ms) for so
    # long; "" for none. ``control``: this move takes the holdout path, so the instance's
    # goal counts in the control group.
    goal_key: str
    goal_window_ms: int
    entered_ms: int
    control: bool
    send: Sequence[Candidate] = field(metadata=ITEMS)


LIBRARY: Final = Library.build(
    "crmstream_triggers",
    ["triggers.lua", "gate.lua", "emit.lua", "upkeep.lua", "journeys.lua"],
    [Emit, Release, Goals, IndexPhones, Erase, JourneyMove],
    "\n".join(
        [
            lua_constants("TRIGGER_KEYS", TRIGGER_KEYS._asdict()),
            lua_constants("DECISION", Decision),
            lua_constants("LOGGED", Logged),
            # The stats a conversion adds to (rules/lift.py reads them).
            lua_constants(
                "COUNTED", {"CONVERTED": CONVERTED, "CONVERTED_HOLDOUT": CONVERTED_HOLDOUT}
            ),
            lua_constants(
                "NAMES",
                {
                    "SEPARATOR": SEPARATOR,
                    "SUPPRESSED_MARK": SUPPRESSED_MARK,
                    "ENTRIES_MARK": ENTRIES_MARK,
                    "ENTERED_MARK": ENTERED_MARK,
                    "JOURNEY_STATS_PREFIX": JOURNEY_STATS_PREFIX,
                    "JOURNEY_ENTERED": JOURNEY_ENTERED,
                },
            ),
        ]
    ),
)
