from __future__ import annotations

import pytest

from crmstream.errors import KafkaError
from crmstream.topics import TopicNames
from storefront.publisher import partition_key, stream_of


def test_names_follow_the_design() -> None:
    names = TopicNames("crm")
    assert names.events == (
        "crm.events.browse",
        "crm.events.cart",
        "crm.events.order",
        "crm.events.review",
        "crm.events.customer",
    )
    assert names.outputs == ("crm.dlq", "crm.triggers", "crm.segments")


@pytest.mark.parametrize(
    ("event_type", "stream"),
    [
        ("item.viewed", "browse"),
        ("search.performed", "browse"),
        ("cart.cleared", "cart"),
        ("order.refunded", "order"),
        ("review.posted", "review"),
        ("survey.answered", "customer"),
        ("customer.erasure_requested", "customer"),
    ],
)
def test_every_type_has_its_stream(event_type: str, stream: str) -> None:
    assert stream_of(event_type) == stream


def test_unknown_type_has_no_stream() -> None:
    with pytest.raises(KafkaError, match="no event topic"):
        stream_of("parcel.lost")


def test_partition_key_is_shop_and_customer() -> None:
    assert partition_key({"shop": "s1", "subject": "c9"}) == b"s1:c9"
    assert partition_key({"shop": "s1", "anonymousid": "a7"}) == b"s1:a7"
