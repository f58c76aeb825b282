"""The right to know: everything crmstream holds about one customer, as one document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.profile.read import ProfileReader
from handlers.segments.read import SegmentReader
from handlers.triggers.decisions import DecisionReader

NOTE = (
    "Phone numbers and e-mail addresses are held only as keyed hashes (HMAC-SHA256). "
    "Triggers and segment changes already published to Kafka are kept there for the "
    "topics' retention."
)


async def export_customer(
    profiles: ProfileReader,
    segments: SegmentReader,
    decisions: DecisionReader,
    shop: str,
    customer: str,
) -> dict[str, Any] | None:
    """The document, or None when nothing is held (unknown, or erased)."""
    profile = await profiles.read(shop, customer)
    if profile is None:
        return None
    return {
        "shop": shop,
        "customer": customer,
        "exported_at": datetime.now(UTC).isoformat(),
        "facts": profile.get("facts", {}),
        "profile": profile,
        "segments": await segments.of_customer(shop, customer),
        "journeys": await decisions.journeys(shop, customer),
        "triggers": await decisions.fired(shop, customer),
        "decisions": await decisions.log(shop, customer),
        "note": NOTE,
    }
