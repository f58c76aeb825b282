"""Names and values of a partition's timing entries (functions/timers.lua keeps them).

Five kinds, each in a sorted set of the partition's, scored by event time:

- "t": absence timers, one pending per rule and customer, scored by deadline (one
  already due when its customer arms again is kept under its own name, with its
  deadline added, to fire as it stands);
- "e": an on-event rule's decision about one event, put off while a worker was
  behind, scored by the event's time;
- "d": an arm, a cancel or an erasure, applied in its turn by the Redis function
  that walks the due entries;
- "j" and "w": an event for the customer's journeys, and the end of a journey
  instance's wait (handlers/journeys), among the timers.

At equal times they are walked d, e, t: what happened at a deadline is known
before the timer fires, as the reference (tests/oracle/triggers.py) has it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import orjson

from handlers.functions.timers import DueReply, Entry, Op, PutOff

log = logging.getLogger("crmstream.timers")

DueEntry = tuple[str, int, dict[str, Any]]  # member, deadline (or event time), what armed it

ABSENCE: Final = Entry.ABSENCE.value
PUT_OFF: Final = Entry.PUT_OFF.value
JOURNEY_EVENT: Final = Entry.JOURNEY_EVENT.value
JOURNEY_WAIT: Final = Entry.JOURNEY_WAIT.value


def timer_member(rule_id: str, shop: str, customer: str) -> str:
    """The pending absence timer of a rule for a customer (one at a time)."""
    return f"{ABSENCE}\x1f{rule_id}\x1f{shop}\x1f{customer}"


def deferred_member(rule_id: str, shop: str, customer: str, event_id: str) -> str:
    """An on-event rule's decision about one event, put off until event time catches up."""
    return f"{PUT_OFF}\x1f{rule_id}\x1f{shop}\x1f{customer}\x1f{event_id}"


def journey_event_member(shop: str, customer: str, event_id: str) -> str:
    """An event for the customer's journeys, walked in its turn by the partition's time."""
    return f"{JOURNEY_EVENT}\x1f-\x1f{shop}\x1f{customer}\x1f{event_id}"


def journey_wait_member(journey: str, shop: str, customer: str, key: str, visit: int) -> str:
    """The end of one wait of a journey instance: named with its visit, so that the next
    wait never takes the name of one a walk has in hand (an old one found later, the
    instance moved on, is let go)."""
    return f"{JOURNEY_WAIT}\x1f{journey}\x1f{shop}\x1f{customer}\x1f{key}\x1f{visit}"


def journey_waits_pattern(journey: str) -> str:
    """A SCAN pattern that matches every wait of ``journey`` (ids hold no glob character)."""
    return f"{JOURNEY_WAIT}\x1f{journey}\x1f*"


def journey_wait_of(member: str) -> tuple[str, int]:
    """(instance key, visit) of a journey_wait_member."""
    parts = member.split("\x1f")
    return "\x1f".join(parts[4:-1]), int(parts[-1])


def parse_member(member: str) -> tuple[str, str, str, str]:
    """(kind, rule or journey, shop, customer) of an entry other than an op."""
    kind, rule_id, shop, customer, *_rest = member.split("\x1f")
    return kind, rule_id, shop, customer


def customer_of(member: str) -> tuple[str, str]:
    """(shop, customer) of an entry other than an op."""
    _kind, _name, shop, customer = parse_member(member)
    return shop, customer


def timer_value(deadline: int, armed_at: int, armed: dict[str, Any]) -> bytes:
    """What a timer holds: its deadline and arming time first (functions/timers.lua reads
    them)."""
    return f"{deadline}\n{armed_at}\n".encode() + orjson.dumps(armed)


def read_timer_value(value: bytes) -> tuple[int, dict[str, Any]]:
    deadline, _armed_at, armed = value.split(b"\n", 2)
    return int(deadline), orjson.loads(armed)


def arm_op(member: str, value: bytes, rearm: bool, *, event_id: str) -> PutOff:
    """An event arms ``member``: applied once its partition's event time passes it."""
    at_ms = value.split(b"\n", 2)[1].decode()
    return _put_off(Op.ARM, member, int(at_ms), event_id, f"{1 if rearm else 0}\n".encode() + value)


def cancel_op(member: str, at_ms: int, *, event_id: str) -> PutOff:
    """An event cancels ``member`` if it falls in its window; applied like arm_op."""
    return _put_off(Op.CANCEL, member, at_ms, event_id, str(at_ms).encode())


def erase_op(member: str, at_ms: int, *, event_id: str) -> PutOff:
    """An erasure takes ``member`` and the mark of when it was last armed, in its turn
    among the customer's arms and cancels."""
    return _put_off(Op.ERASE, member, at_ms, event_id, b"")


def _put_off(kind: Op, member: str, at_ms: int, event_id: str, tail: bytes) -> PutOff:
    name = f"{Entry.OP}\x1f{member[2:]}\x1f{event_id}\x1f{kind}"
    return PutOff(name, at_ms, f"{kind}\n{member}\n".encode() + tail)


def read_walks(
    partitions: Sequence[int], replies: Sequence[DueReply]
) -> tuple[Counter[str], dict[int, tuple[bool, int]], dict[int, list[DueEntry]]]:
    """One walk's replies, partition by partition: how many cancels it applied, whether
    its limit cut it short and how many decisions put off still wait, and what is due."""
    outcomes: Counter[str] = Counter()
    waiting: dict[int, tuple[bool, int]] = {}
    due: dict[int, list[DueEntry]] = {}
    for partition, reply in zip(partitions, replies, strict=True):
        if reply.cancelled:
            outcomes["cancelled"] += reply.cancelled
        if reply.state_lost:
            # Read again from where Redis stands (the consumer finds it so before its next
            # batch): until then, nothing of this partition's is decided.
            log.warning("partition %d: its state lost writes; no timer walked", partition)
            waiting[partition] = (False, reply.waiting)
            continue
        waiting[partition] = (reply.cut_short, reply.waiting)
        for entry in reply.entries:
            if entry.value:
                deadline, armed = read_timer_value(entry.value)
                due.setdefault(partition, []).append((entry.member, deadline, armed))
    return outcomes, waiting, due
