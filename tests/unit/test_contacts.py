"""Contact details hashed before they are sent: the engine's own keyed hash, a hash the
storefront sent kept as the engine would keep it, anything else left byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from crmstream.privacy import email_hash, phone_hash
from schemas.decode import Decoder
from schemas.times import epoch_ms
from storefront.contacts import without_clear_contacts

KEY = b"k" * 32
DECODER = Decoder()


def sent(kind: str, data: dict[str, Any]) -> bytes:
    event = {
        "specversion": "1.0", "id": "e1", "source": "test", "type": kind,
        "time": "2026-03-01T09:00:00Z", "shop": "s1", "subject": "c1", "data": data,
    }  # fmt: skip
    value = orjson.dumps(event)
    return without_clear_contacts(value, DECODER.require(value, epoch_ms(datetime.now(UTC))), KEY)


def test_phone_and_email_go_as_the_engine_s_keyed_hashes() -> None:
    data = orjson.loads(sent("customer.updated", {"phone": "+86 139-0000-1234", "email": "A@B.cn"}))
    assert data["data"] == {
        "phone_hash": phone_hash(KEY, "13900001234"),
        "email_hash": email_hash(KEY, "a@b.cn"),
    }
    assert DECODER.require(orjson.dumps(data), epoch_ms(datetime.now(UTC))).stream == "customer"


def test_a_hash_the_storefront_sent_is_kept_and_the_clear_value_dropped() -> None:
    theirs = "ab" * 32
    data = orjson.loads(sent("customer.registered", {"phone": "13900001234", "phone_hash": theirs}))
    assert data["data"] == {"phone_hash": theirs}


def test_events_without_contact_details_are_sent_as_they_came() -> None:
    for kind, data in [
        ("customer.registered", {"region": "华东"}),
        ("search.performed", {"query": "13900001234"}),  # free text is not a contact field
    ]:
        event = {
            "specversion": "1.0", "id": "e1", "source": "test", "type": kind,
            "time": "2026-03-01T09:00:00Z", "shop": "s1", "subject": "c1", "data": data,
        }  # fmt: skip
        value = orjson.dumps(event)
        assert sent(kind, data) == value
