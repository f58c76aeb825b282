"""What a rule condition sees: ``event``, ``profile`` and ``now``, in CEL's types.

CEL has no decimal, so money becomes a double here, for comparing only; what
is stored and sent stays exact. ISO times become timestamps, so that
``now - profile.recency.last_order > duration('720h')`` reads as it should.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from schemas.events import Envelope

# Profile sections whose values are money (as "12.34" text) or ISO times.
_MONEY_COUNTERS: Final = frozenset({"spend"})
_MONEY_WINDOWS: Final = frozenset({"spend_90d", "spend_365d"})


def _plain(value: Any) -> Any:  # noqa: ANN401 -- any event value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def event_view(event: Envelope) -> dict[str, Any]:
    view = _plain(event.model_dump())
    view["type"] = event.type  # type: ignore[attr-defined]  # every concrete event has one
    view.setdefault("data", {})
    return view  # type: ignore[no-any-return]  # _plain keeps a dict a dict


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def profile_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The profile document (docs/DESIGN.md §2, "The live profile"), whichever sections it
    has, with money as doubles and times as timestamps."""
    view = dict(profile)
    view["as_of"] = _time(profile["as_of"])
    if "counters" in profile:
        counters = view["counters"] = dict(profile["counters"])
        for name in _MONEY_COUNTERS:
            counters[name] = float(counters[name])
    if "windows" in profile:
        windows = view["windows"] = dict(profile["windows"])
        for name in _MONEY_WINDOWS:
            windows[name] = float(windows[name])
    if "recency" in profile:
        view["recency"] = {name: _time(value) for name, value in profile["recency"].items()}
    if "cart" in profile:
        cart = profile["cart"]
        view["cart"] = {
            "items": [{**line, "price": float(line["price"])} for line in cart["items"]],
            "count": cart["count"],
            "value": float(cart["value"]),
        }
    return view


def activation(
    event: Mapping[str, Any] | None, profile: Mapping[str, Any], now_ms: int
) -> dict[str, Any]:
    return {
        "event": event if event is not None else {},
        "profile": profile,
        "now": datetime.fromtimestamp(now_ms / 1000, UTC),
    }
