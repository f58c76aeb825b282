"""The front door: every way to be wrong has its reason, and money stays exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.decode import Decoder, Rejected
from schemas.errors import InvalidEventError, Reason
from schemas.events import EVENT_TYPES, CartItemAdded, OrderPlaced

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DECODER = Decoder()
NOT_AFTER = DECODER.not_after(NOW)


def cart_added(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "storefront/web",
        "type": "cart.item_added",
        "time": "2026-03-01T11:59:00+08:00",
        "shop": "tea-house",
        "subject": "c42",
        "data": {"item_id": "oolong", "category": "tea", "qty": 2, "price": "128.00"},
    }
    event.update(changes)
    return event


def decode(event: Any, key: bytes | None = b"tea-house:c42", stream: str | None = "cart") -> Any:
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    return DECODER.decode(raw, key, stream, NOT_AFTER)


def reason_of(event: Any, **kwargs: Any) -> Reason:
    result = decode(event, **kwargs)
    assert isinstance(result, Rejected), result
    return result.reason


def test_a_valid_event_comes_out_typed_and_exact() -> None:
    event = decode(cart_added())
    assert isinstance(event, CartItemAdded)
    assert event.data.price == Decimal("128.00")
    assert event.who == "c42"


def test_money_as_json_number_is_exact() -> None:
    event = decode(cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": 0.1}))
    assert event.data.price == Decimal("0.1")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (b"\xff\xfe{}", Reason.NOT_UTF8),
        (b"{nope", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (b"[1, 2]", Reason.NOT_OBJECT),
        (b"null", Reason.NOT_OBJECT),
        (cart_added(type="parcel.lost"), Reason.UNKNOWN_TYPE),
        ({k: v for k, v in cart_added().items() if k != "type"}, Reason.MISSING_FIELD),
        ({k: v for k, v in cart_added().items() if k != "id"}, Reason.MISSING_FIELD),
        ({k: v for k, v in cart_added().items() if k != "subject"}, Reason.MISSING_FIELD),
        (cart_added(data={"item_id": "a", "category": "c", "qty": "2", "price": "1"}),
         Reason.INVALID_FIELD),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 0, "price": "1"}),
         Reason.OUT_OF_RANGE),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": "-1.00"}),
         Reason.OUT_OF_RANGE),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": "1.001"}),
         Reason.OUT_OF_RANGE),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": True}),
         Reason.INVALID_FIELD),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": "NaN"}),
         Reason.OUT_OF_RANGE),
        (cart_added(time="2026-03-01T11:59:00"), Reason.INVALID_FIELD),
        (cart_added(time=1767225600), Reason.INVALID_FIELD),
        (cart_added(time="2026-03-02T12:00:00Z"), Reason.FUTURE_TIME),
        (cart_added(specversion="0.3"), Reason.INVALID_FIELD),
        (cart_added(shop="tea:house"), Reason.INVALID_FIELD),
        (cart_added(subject="{c42}"), Reason.INVALID_FIELD),
        (cart_added(Bad_Extension="x"), Reason.INVALID_FIELD),
        (cart_added(data={"item_id": "a", "category": "c", "qty": 1, "price": "1", "x": 1}),
         Reason.INVALID_FIELD),
    ],
)  # fmt: skip
def test_each_way_to_be_wrong_has_its_reason(event: Any, reason: Reason) -> None:
    assert reason_of(event) == reason


def test_oversized_is_refused_before_parsing() -> None:
    small = Decoder(max_bytes=1024)
    result = small.decode(b"x" * 2000, None, None, NOT_AFTER)
    assert isinstance(result, Rejected)
    assert result.reason is Reason.OVERSIZED


def test_type_on_the_wrong_topic() -> None:
    assert reason_of(cart_added(), stream="order") is Reason.WRONG_TOPIC


@pytest.mark.parametrize("key", [None, b"tea-house:c43", b"c42", b"other:c42"])
def test_key_must_be_shop_and_customer(key: bytes | None) -> None:
    assert reason_of(cart_added(), key=key) is Reason.BAD_KEY


def test_anonymous_shoppers_may_browse_and_fill_carts_but_not_order() -> None:
    anonymous = {k: v for k, v in cart_added().items() if k != "subject"}
    anonymous["anonymousid"] = "dev-77"
    assert isinstance(decode(anonymous, key=b"tea-house:dev-77"), CartItemAdded)
    order = {
        **anonymous,
        "type": "order.placed",
        "data": {
            "order_id": "o1",
            "items": [{"item_id": "a", "category": "c", "qty": 1, "price": "1.00"}],
            "total": "1.00",
        },
    }
    result = decode(order, key=b"tea-house:dev-77", stream="order")
    assert isinstance(result, Rejected)
    assert result.reason is Reason.MISSING_FIELD
    assert result.message.startswith("subject:")


def test_cloudevents_extensions_are_allowed_when_well_formed() -> None:
    event = decode(cart_added(traceparent="00-abc-def-01", region2="east"))
    assert isinstance(event, CartItemAdded)


def test_messages_name_the_field() -> None:
    result = decode(
        cart_added(
            type="order.placed",
            data={
                "order_id": "o1",
                "items": [{"item_id": "a", "category": "c", "qty": 0, "price": "1"}],
                "total": "1",
            },
        ),
        stream="order",
    )
    assert isinstance(result, Rejected)
    assert result.message.startswith("data.items[0].qty:")


def test_require_raises_with_the_same_reason() -> None:
    with pytest.raises(InvalidEventError) as caught:
        DECODER.require(orjson.dumps(cart_added(type="nope")), NOT_AFTER)
    assert caught.value.reason is Reason.UNKNOWN_TYPE


def test_future_skew_is_configurable() -> None:
    lenient = Decoder(future_skew=timedelta(days=2))
    event = orjson.dumps(cart_added(time="2026-03-02T12:00:00Z"))
    assert not isinstance(lenient.decode(event, None, None, lenient.not_after(NOW)), Rejected)


def test_the_catalogue_is_complete() -> None:
    assert set(EVENT_TYPES) == {
        "item.viewed", "item.favorited", "search.performed",
        "cart.item_added", "cart.item_removed", "cart.cleared",
        "order.placed", "order.paid", "order.shipped", "order.delivered",
        "order.cancelled", "order.refunded", "review.posted",
        "customer.registered", "customer.updated", "customer.identified",
        "survey.answered", "customer.erasure_requested",
    }  # fmt: skip
    assert OrderPlaced.stream == "order"


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("f", "female"), ("F", "female"), (" 女 ", "female"), ("m", "male"), ("M", "male"),
     ("男", "male"), ("Male", "male"), ("保密", "unknown"), ("unknown", "unknown")],
)  # fmt: skip
def test_common_gender_spellings_mean_the_canonical_value(spelling: str, canonical: str) -> None:
    registered = {**cart_added(), "type": "customer.registered", "data": {"gender": spelling}}
    event = decode(registered, stream="customer")
    assert not isinstance(event, Rejected), event
    assert event.data.gender == canonical


def test_an_unknown_gender_is_refused_with_the_values_it_takes() -> None:
    registered = {**cart_added(), "type": "customer.registered", "data": {"gender": "x"}}
    refused = decode(registered, stream="customer")
    assert isinstance(refused, Rejected)
    assert refused.reason == Reason.INVALID_FIELD
    assert "gender" in refused.message
    assert "'female', 'male' or 'unknown'" in refused.message


@pytest.mark.parametrize(
    "written",
    [
        "2026-03-01T11:59:00.123456+08:00",
        "2026-03-01T03:59:00.999Z",
        "1969-12-31T23:59:59.999-05:30",
    ],
)
def test_time_ms_is_the_times_milliseconds_since_the_epoch(written: str) -> None:
    event = decode(cart_added(time=written))
    moment = datetime.fromisoformat(written)
    assert event.time_ms == (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert event.time_ms == decode(cart_added(time=written)).time_ms  # worked out alike each time
