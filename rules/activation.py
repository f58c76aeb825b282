"""What a rule condition sees: ``event``, ``profile``, ``now`` and ``cents()``, in CEL's types.

CEL has no decimal, and a double cannot hold 0.10 or 19999999.99: money would compare
and add wrongly. So every amount reaches a condition as an exact integer number of
cents (hundredths of the currency's major unit, as the engine keeps it), under its
name with ``_cents`` after it: ``event.data.total_cents``,
``profile.counters.spend_cents``, ``profile.cart.value_cents``. The names in the major
unit are not there, so a condition written for them is refused when it loads, not
silently compared in cents. ``cents('100.00')`` writes an amount in the major unit,
exactly (10000). ISO times become timestamps, so that
``now - profile.recency.last_order > duration('720h')`` reads as it should.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from schemas.events import Envelope

CENTS_SUFFIX: Final = "_cents"
# Every money field of the event contract (schemas.types.Money) and of the profile.
EVENT_MONEY: Final = frozenset({"price", "total", "amount"})
_MONEY_COUNTERS: Final = frozenset({"spend"})
_MONEY_WINDOWS: Final = frozenset({"spend_90d", "spend_365d"})
MONEY_NAMES: Final = EVENT_MONEY | _MONEY_COUNTERS | _MONEY_WINDOWS | {"value"}
# What cents() takes: an amount as the contract writes it, up to 12 digits and 2 decimals.
AMOUNT: Final = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")


def cents(amount: str) -> int:
    """``cents('19999999.99')`` is 1999999999: an amount in the major unit, exactly.
    Conditions call it with a literal only (checked when they compile), so it never
    sees anything but a valid amount."""
    if not isinstance(amount, str) or not AMOUNT.match(amount):
        raise ValueError(f"cents() takes an amount such as '100.00', not {amount!r}")
    return int(Decimal(amount).scaleb(2))


def _cents_of(value: Decimal | str) -> int:
    """The profile writes money as text ("-5.00" for a spend net of refunds), events hold
    it as a decimal of at most two places: either way, exact."""
    return int(Decimal(value).scaleb(2))


# What an event holds most: kept as they are, asked about first.
_AS_IS: Final = frozenset({str, int, float, bool, type(None), datetime})


def _plain(value: Any) -> Any:  # noqa: ANN401 -- any event value
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if key in EVENT_MONEY:
                plain[key + CENTS_SUFFIX] = None if item is None else _cents_of(item)
            else:
                plain[key] = _plain(item)
        return plain
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        # A decimal outside the money fields would have to become a double: refuse it.
        raise TypeError(f"{value!r} is not under a money field ({sorted(EVENT_MONEY)})")
    return value


def event_view(event: Envelope) -> dict[str, Any]:
    view = _plain(event.model_dump())
    view["type"] = event.type  # type: ignore[attr-defined]  # every concrete event has one
    view.setdefault("data", {})
    return view  # type: ignore[no-any-return]  # _plain keeps a dict a dict


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _in_cents(section: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name, value in section.items():
        if name in names:
            view[name + CENTS_SUFFIX] = _cents_of(value)
        else:
            view[name] = value
    return view


def profile_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The profile document (docs/DESIGN.md §2, "The live profile"), whichever sections it
    has, with money in cents and times as timestamps."""
    view = dict(profile)
    view["as_of"] = _time(profile["as_of"])
    if "counters" in profile:
        view["counters"] = _in_cents(profile["counters"], _MONEY_COUNTERS)
    if "windows" in profile:
        view["windows"] = _in_cents(profile["windows"], _MONEY_WINDOWS)
    if "recency" in profile:
        view["recency"] = {name: _time(value) for name, value in profile["recency"].items()}
    if "cart" in profile:
        cart = profile["cart"]
        view["cart"] = {
            "items": [_in_cents(line, frozenset({"price"})) for line in cart["items"]],
            "count": cart["count"],
            "value_cents": _cents_of(cart["value"]),
        }
    return view


def activation(
    event: Mapping[str, Any] | None, profile: Mapping[str, Any], now_ms: int
) -> dict[str, Any]:
    return {
        "event": event if event is not None else {},
        "profile": profile,
        "now": datetime.fromtimestamp(now_ms / 1000, UTC),
        "cents": cents,
    }
