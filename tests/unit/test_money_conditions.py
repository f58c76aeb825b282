"""Money in rule conditions is exact: amounts a double gets wrong (0.10 + 0.20, and
19999999.99 less 19999999.98) compare and add as the storefront wrote them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from handlers.triggers.samples import rule_samples, sample_profile
from rules.activation import activation, cents, event_view, profile_view
from rules.expressions import Condition, ConditionError
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.samples import SAMPLE_DATA
from schemas.times import epoch_ms

DECODER = Decoder()


def order(total: str, *prices: str) -> Envelope:
    lines = [
        {"item_id": f"i{n}", "category": "tea", "qty": 1, "price": price}
        for n, price in enumerate(prices)
    ]
    raw = {
        "specversion": "1.0", "id": f"o-{total}", "source": "test", "type": "order.placed",
        "time": "2026-03-01T04:00:00Z", "shop": "s1", "subject": "c1",
        "data": {"order_id": "o1", "items": lines, "total": total},
    }  # fmt: skip
    return DECODER.require(orjson.dumps(raw), epoch_ms(datetime.now(UTC)))


def on(event: Envelope) -> dict[str, Any]:
    return activation(event_view(event), profile_view(sample_profile()), 0)


def test_the_amounts_chosen_are_ones_a_double_gets_wrong() -> None:
    doubles = Condition("0.1 + 0.2 == 0.3 || 19999999.99 - 19999999.98 == 0.01")
    assert not doubles.holds({})
    assert float(Decimal("0.1")) + float(Decimal("0.2")) != float(Decimal("0.3"))


@pytest.mark.parametrize(
    "text",
    [
        "event.data.items[0].price_cents + event.data.items[1].price_cents"
        " == event.data.total_cents",
        "event.data.total_cents == cents('0.30') && event.data.total_cents == 30",
        "event.data.total_cents - event.data.items[0].price_cents == cents('0.2')",
    ],
)
def test_cents_add_up_where_doubles_do_not(text: str) -> None:
    assert Condition(text).holds(on(order("0.30", "0.10", "0.20")))


def test_twenty_million_less_a_cent_is_exact() -> None:
    context = on(order("19999999.99", "19999999.98", "0.01"))
    condition = Condition(
        "event.data.total_cents == cents('19999999.99')"
        " && event.data.total_cents - cents('19999999.98') == 1"
        " && event.data.items[0].price_cents + event.data.items[1].price_cents"
        " == event.data.total_cents"
    )
    assert condition.holds(context)
    # What a trigger's reason shows: the exact integer the condition read.
    assert condition.values_read(context)["event.data.total_cents"] == 1_999_999_999


def test_the_profile_s_money_reads_in_cents() -> None:
    view = profile_view(sample_profile())
    assert view["counters"]["spend_cents"] == 15900
    assert view["cart"]["value_cents"] == 5900
    assert view["cart"]["items"][0]["price_cents"] == 5900
    assert isinstance(view["windows"]["spend_90d_cents"], int)
    assert isinstance(view["windows"]["spend_365d_cents"], int)
    # Nothing of money is left in the major unit (average rating and CSAT are doubles).
    major_unit = {"spend", "spend_90d", "spend_365d", "value", "price"}
    for section in (view["counters"], view["windows"], view["cart"], *view["cart"]["items"]):
        assert not major_unit & section.keys(), section


@pytest.mark.parametrize("event_type", sorted(SAMPLE_DATA))
def test_no_event_reaches_a_condition_with_a_double(event_type: str) -> None:
    def floats(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [f for item in value.values() for f in floats(item)]
        if isinstance(value, list):
            return [f for item in value for f in floats(item)]
        return [value] if isinstance(value, float) else []

    assert floats(rule_samples(event_type)["event"]) == []


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", 0),
        ("0.3", 30),
        ("0.30", 30),
        ("19999999.99", 1_999_999_999),
        ("999999999999.99", 99_999_999_999_999),
    ],
)
def test_cents_writes_an_amount_exactly(amount: str, expected: int) -> None:
    assert cents(amount) == expected
    assert Condition(f"cents('{amount}') == {expected}").holds(activation(None, {}, 0))


@pytest.mark.parametrize(
    "text",
    [
        "cents(100.5) > 0",  # a double, the thing to avoid
        "cents('1e5') > 0",
        "cents('-1.00') < 0",
        "cents('0.001') == 0",
        "cents(event.data.query) > 0",  # not written out: known only when an event comes
    ],
)
def test_cents_takes_an_amount_written_out_or_the_condition_is_refused(text: str) -> None:
    with pytest.raises(ConditionError, match=r"cents\(\) takes an amount"):
        Condition(text)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("event.data.total >= 100.0", "total"),
        ("profile.counters.spend > 0.0", "spend"),
        ("profile.cart.value >= 99.5", "value"),
    ],
)
def test_money_in_the_major_unit_is_refused_with_its_exact_name(text: str, name: str) -> None:
    with pytest.raises(ConditionError, match=rf"unknown field '{name}': .* {name}_cents"):
        Condition(text).check(rule_samples("order.placed"))
