"""Whatever arrives, the decoder answers with the reason the contract gives for it: a
valid event, or a refusal naming what is wrong (README, "Events in").

Inputs are written with the standard json module: it writes integers of any size,
as a storefront in another language may. The reason each input must get is worked
out here from the input alone, in the contract's order: too big, not UTF-8, not JSON,
not an object, no type; then, for an event wrong in exactly one way, that way.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.decode import Decoder, Rejected
from schemas.errors import Reason
from schemas.events import EVENT_TYPES, Envelope

MAX_BYTES = 4096
DECODER = Decoder(max_bytes=MAX_BYTES)
NOW = datetime(2026, 3, 1, tzinfo=UTC)
NOT_AFTER = DECODER.not_after(NOW)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _answer(raw: bytes, stream: str | None, key: bytes | None = b"s:c") -> Envelope | Rejected:
    result = DECODER.decode(raw, key, stream, NOT_AFTER)
    assert isinstance(result, Envelope | Rejected)
    if isinstance(result, Rejected):
        assert result.message
    return result


def _refused_for(raw: bytes, stream: str | None, key: bytes | None = b"s:c") -> Reason | None:
    result = _answer(raw, stream, key)
    return result.reason if isinstance(result, Rejected) else None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity are Python's, not JSON's


def _reason_before_the_type(raw: bytes) -> Reason | None:
    """The reason due to the message as a whole, or None once it is an object with a type."""
    if len(raw) > MAX_BYTES:
        return Reason.OVERSIZED
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Reason.NOT_UTF8
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return Reason.NOT_JSON
    if not isinstance(value, dict):
        return Reason.NOT_OBJECT
    if "type" not in value:
        return Reason.MISSING_FIELD
    return None


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


@given(st.binary(max_size=5000), st.sampled_from([None, "browse", "order"]))
def test_arbitrary_bytes(raw: bytes, stream: str | None) -> None:
    expected = _reason_before_the_type(raw)
    assume(expected is not None)  # an object with a type: the cases below cover those
    assert _refused_for(raw, stream) == expected


@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    if len(raw) <= MAX_BYTES and not _finite(value):
        assert _refused_for(raw, "cart") == Reason.NOT_JSON  # json writes "Infinity"
        return
    expected = _reason_before_the_type(raw)
    assume(expected is not None)
    assert _refused_for(raw, "cart") == expected


ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._\-]{0,20}\Z")
VALID_DATA: dict[str, dict[str, Any]] = {
    "item.viewed": {"item_id": "oolong", "category": "tea"},
    "cart.item_added": {"item_id": "oolong", "category": "tea", "qty": 2, "price": "128.00"},
    "review.posted": {"item_id": "oolong", "rating": 4},
}
TOPIC = {"item.viewed": "browse", "cart.item_added": "cart", "review.posted": "review"}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(VALID_DATA)))
    at = NOW - timedelta(seconds=draw(st.integers(0, 10**8)))
    return {
        "specversion": "1.0", "id": draw(ids), "source": draw(st.text(min_size=1, max_size=20)),
        "type": kind, "time": at.isoformat(), "shop": draw(ids), "subject": draw(ids),
        "data": dict(VALID_DATA[kind]),
    }  # fmt: skip


def _key(event: dict[str, Any]) -> bytes:
    return f"{event['shop']}:{event['subject']}".encode()


@given(valid_events())
def test_an_event_wrong_in_nothing_is_taken_on_its_own_topic_only(event: dict[str, Any]) -> None:
    raw = json.dumps(event).encode()
    assert isinstance(_answer(raw, None), Envelope)
    assert isinstance(_answer(raw, TOPIC[event["type"]], _key(event)), Envelope)
    others = sorted({"browse", "cart", "order", "review", "customer"} - {TOPIC[event["type"]]})
    for topic in others:
        assert _refused_for(raw, topic, _key(event)) == Reason.WRONG_TOPIC
    assert _refused_for(raw, TOPIC[event["type"]], b"someone:else") == Reason.BAD_KEY
    assert _refused_for(raw, TOPIC[event["type"]], None) == Reason.BAD_KEY
    ahead = {**event, "time": (NOW + timedelta(minutes=6)).isoformat()}
    assert _refused_for(json.dumps(ahead).encode(), None) == Reason.FUTURE_TIME


REQUIRED = ("specversion", "id", "source", "time", "shop", "data")


def _drop(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    del event[draw(st.sampled_from(REQUIRED))]
    return Reason.MISSING_FIELD


def _nobody(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    del event["subject"]  # and no anonymousid either
    return Reason.MISSING_FIELD


def _unknown_type(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["type"] = draw(st.text(max_size=20).filter(lambda kind: kind not in EVENT_TYPES))
    return Reason.UNKNOWN_TYPE


def _other_specversion(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["specversion"] = draw(st.sampled_from(["0.3", "2.0", "1", 1, 1.0, True, None]))
    return Reason.INVALID_FIELD


def _not_a_time(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["time"] = draw(st.sampled_from(["soon", "yesterday", "", "2026-13-01T00:00:00Z", 0]))
    return Reason.INVALID_FIELD


def _no_quantity(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["type"] = "cart.item_added"
    event["data"] = {**VALID_DATA["cart.item_added"], "qty": draw(st.integers(max_value=0))}
    return Reason.OUT_OF_RANGE


def _rating_off_the_scale(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["type"] = "review.posted"
    rating = draw(st.integers(max_value=0) | st.integers(min_value=6))
    event["data"] = {**VALID_DATA["review.posted"], "rating": rating}
    return Reason.OUT_OF_RANGE


def _rating_not_a_number(draw: st.DrawFn, event: dict[str, Any]) -> Reason:
    event["type"] = "review.posted"
    event["data"] = {**VALID_DATA["review.posted"], "rating": draw(st.sampled_from(["4", 4.5]))}
    return Reason.INVALID_FIELD


SPOILERS = (
    _drop, _nobody, _unknown_type, _other_specversion, _not_a_time, _no_quantity,
    _rating_off_the_scale, _rating_not_a_number,
)  # fmt: skip


@st.composite
def spoiled_once(draw: st.DrawFn) -> tuple[dict[str, Any], Reason]:
    """A valid event made wrong in one way, and the reason that way is refused for."""
    event = draw(valid_events())
    return event, draw(st.sampled_from(SPOILERS))(draw, event)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(spoiled_once())
def test_an_event_wrong_in_one_way_is_refused_for_that_way(
    case: tuple[dict[str, Any], Reason],
) -> None:
    event, reason = case
    assert _refused_for(json.dumps(event).encode(), None) == reason
