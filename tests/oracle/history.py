"""Whose events are whose, as the reference reads a history: each id's first delivery,
in event-time order, and anonymous ids merged into the customer who logged in with them
(docs/DESIGN.md §2, "The live profile")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Placeholder device ids, never merged and kept for nobody (docs/DESIGN.md §2).
JUNK_IDS = frozenset(
    {
        "", "0", "-1", "null", "nil", "none", "undefined", "nan", "anonymous", "anon",
        "guest", "unknown", "test", "[object object]", "(null)",
        "00000000-0000-0000-0000-000000000000",
    }
)  # fmt: skip


def is_junk(anonymous_id: str) -> bool:
    return anonymous_id.strip().lower() in JUNK_IDS


def ms(time: str) -> int:
    """Epoch milliseconds, rounded down, exactly (no float on the way)."""
    return (datetime.fromisoformat(time) - EPOCH) // timedelta(milliseconds=1)


def unique_in_time_order(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The first delivery of each id, ordered by event time (then by first publication)."""
    seen: set[str] = set()
    ordered: list[tuple[int, int, dict[str, Any]]] = []
    for n, event in enumerate(events):
        if event["id"] not in seen and event.get("subject"):
            seen.add(event["id"])
            ordered.append((ms(event["time"]), n, event))
    ordered.sort(key=lambda entry: (entry[0], entry[1]))
    return [(at, event) for at, _, event in ordered]


def owners(events: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each customer's events: their own, and those of anonymous ids merged into them."""
    unique: list[dict[str, Any]] = []
    seen: set[str] = set()
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            unique.append(event)
    alias: dict[tuple[str, str], str] = {}
    for event in unique:
        if event["type"] == "customer.identified":
            anonymous = event["data"]["anonymousid"]
            if not is_junk(anonymous):
                alias.setdefault((event["shop"], anonymous), event["subject"])
    owned: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in unique:
        shop = event["shop"]
        if event.get("subject"):
            owner = event["subject"]
        else:
            anonymous = event["anonymousid"]
            if is_junk(anonymous):
                continue
            owner = alias.get((shop, anonymous), anonymous)
        owned[(shop, owner)].append(event)
    return owned
