"""One valid example of every event type: for checking rule conditions against real shapes.

Every optional field is filled in, so a condition that reads one is checked too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import orjson

from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.times import epoch_ms

_LINE: Final = {"item_id": "sku-1", "category": "tea", "qty": 1, "price": "59.00"}
_ORDER: Final = {"order_id": "o-1"}
SAMPLE_DATA: Final[dict[str, dict[str, Any]]] = {
    "item.viewed": {"item_id": "sku-1", "category": "tea", "price": "59.00"},
    "item.favorited": {"item_id": "sku-1", "category": "tea"},
    "search.performed": {"query": "green tea"},
    "cart.item_added": _LINE,
    "cart.item_removed": {"item_id": "sku-1", "qty": 1},
    "cart.cleared": {},
    "order.placed": {**_ORDER, "items": [_LINE], "total": "59.00", "currency": "CNY"},
    "order.paid": {**_ORDER, "total": "59.00"},
    "order.shipped": _ORDER,
    "order.delivered": _ORDER,
    "order.cancelled": _ORDER,
    "order.refunded": {**_ORDER, "amount": "59.00"},
    "review.posted": {"item_id": "sku-1", "order_id": "o-1", "rating": 2, "text": "late"},
    "customer.registered": {
        "birthday": "1990-05-01",
        "gender": "female",
        "region": "Zhejiang",
        "city": "Hangzhou",
        "timezone": "Asia/Shanghai",
        "member_level": "silver",
        "tags": ["tea"],
        "consents": {"marketing": True, "sms": True, "email": True, "push": True},
    },
    "customer.updated": {"member_level": "gold", "consents": {"marketing": True}},
    "customer.identified": {"anonymousid": "device-1"},
    "survey.answered": {"survey_id": "nps-1", "score": 9, "scale": 10, "comment": "fast"},
    "customer.erasure_requested": {},
}


def sample_event(event_type: str) -> Envelope:
    """A decoded example of ``event_type`` (KeyError for a type that does not exist)."""
    raw = {
        "specversion": "1.0",
        "id": f"sample-{event_type}",
        "source": "crmstream/samples",
        "type": event_type,
        "time": "2026-01-01T00:00:00Z",
        "shop": "sample-shop",
        "subject": "sample-customer",
        "data": SAMPLE_DATA[event_type],
    }
    return Decoder().require(orjson.dumps(raw), epoch_ms(datetime.now(UTC)))
