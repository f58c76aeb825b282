"""Whatever arrives, the decoder answers: a valid event, or a refusal with a known reason.

Inputs are written with the standard json module: it writes integers of any size,
as a storefront in another language may.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.decode import Decoder, Rejected
from schemas.errors import Reason
from schemas.events import EVENT_TYPES, Envelope

DECODER = Decoder(max_bytes=4096)
NOT_AFTER = DECODER.not_after(datetime(2026, 3, 1, tzinfo=UTC))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _answer(raw: bytes, stream: str | None) -> Envelope | Rejected:
    result = DECODER.decode(raw, b"s:c", stream, NOT_AFTER)
    assert isinstance(result, Envelope | Rejected)
    if isinstance(result, Rejected):
        assert result.reason in Reason
        assert result.message
    return result


@given(st.binary(max_size=5000), st.sampled_from([None, "browse", "order"]))
def test_arbitrary_bytes(raw: bytes, stream: str | None) -> None:
    _answer(raw, stream)


@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    _answer(json.dumps(value).encode(), "cart")


envelopes = st.fixed_dictionaries(
    {
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": st.text(max_size=10),
        "source": st.text(max_size=5),
        "type": st.sampled_from([*EVENT_TYPES, "x.y", ""]),
        "time": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", "soon", 0]),
        "shop": st.sampled_from(["s", "", "a:b"]),
        "data": st.dictionaries(
            st.sampled_from(["item_id", "category", "qty", "price", "order_id", "rating"]),
            json_values,
        ),
    },
    optional={"subject": st.sampled_from(["c", "", "a b"]), "anonymousid": st.text(max_size=5)},
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_almost_events(event: dict[str, Any]) -> None:
    _answer(json.dumps(event).encode(), None)
