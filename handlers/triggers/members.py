"""Names and values of timers (lua/triggers.lua keeps them per trigger shard).

Two kinds share the sorted set of a shard: absence timers ("a"), one pending per
rule and customer, and on-event decisions put off while a worker is behind
("e"), one per rule and event. An absence timer already due when its customer
arms again is kept under its own name (with its deadline added) to fire as it is.
"""

from __future__ import annotations

from typing import Any

import orjson

ABSENCE, PUT_OFF = "a", "e"


def timer_member(rule_id: str, shop: str, customer: str) -> str:
    """The pending absence timer of a rule for a customer (one at a time)."""
    return f"{ABSENCE}\x1f{rule_id}\x1f{shop}\x1f{customer}"


def deferred_member(rule_id: str, shop: str, customer: str, event_id: str) -> str:
    """An on-event rule's decision about one event, put off until event time catches up."""
    return f"{PUT_OFF}\x1f{rule_id}\x1f{shop}\x1f{customer}\x1f{event_id}"


def parse_member(member: str) -> tuple[str, str, str, str]:
    """(kind, rule, shop, customer) of any timer (absence timers kept due have a suffix)."""
    kind, rule_id, shop, customer, *_rest = member.split("\x1f")
    return kind, rule_id, shop, customer


def timer_value(deadline: int, armed_at: int, armed: dict[str, Any]) -> bytes:
    """What a timer holds: its deadline and arming time first (lua/triggers.lua reads them)."""
    return f"{deadline}\n{armed_at}\n".encode() + orjson.dumps(armed)


def read_timer_value(value: bytes) -> tuple[int, dict[str, Any]]:
    deadline, _armed_at, armed = value.split(b"\n", 2)
    return int(deadline), orjson.loads(armed)
