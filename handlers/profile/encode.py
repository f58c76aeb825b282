"""Events as the profile function's arguments, packed: one argument per customer.

Each event is (digest, time, type, a, b, c, d), packed as unpack_events in
functions/profile_state.lua reads it (functions/profile.py PACKED_FIELDS); what a..d
hold depends on the type, as below.
Money goes over as integer cents, loyalty points already computed with the
shop's rate. Packing matters: redis-py spends microseconds on every argument,
and a batch would otherwise have seven per event.
"""

from __future__ import annotations

import hashlib

import orjson

from crmstream.privacy import email_hash, phone_hash
from handlers.functions.profile import SEPARATOR as _SEPARATOR
from rules.shop_config import ShopConfig
from schemas import events as ev
from schemas.events import Envelope
from schemas.payloads import CustomerFacts

EncodedEvent = bytes


def digest(event_id: str) -> bytes:
    """8 bytes stand for the id in the dedup set: a sixth of the memory, collisions negligible
    among one customer's events of one window."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def cents(amount: object) -> int:
    # Money arrives as a Decimal with at most two places: exact.
    return int(amount * 100)  # type: ignore[operator]


def _clean(value: str) -> str:
    # Tabs, newlines and the unit separator separate encoded fields.
    return value.replace("\t", " ").replace("\n", " ").replace(_SEPARATOR, " ")


def encode_facts(data: CustomerFacts, hash_key: bytes | None) -> str:
    """customer.registered / customer.updated facts as "name\\tvalue" lines."""
    facts: list[tuple[str, str]] = []
    for name in ("gender", "region", "city", "timezone", "member_level"):
        value = getattr(data, name)
        if value is not None:
            facts.append((name, _clean(value)))
    if data.birthday is not None:
        facts.append(("birthday", data.birthday.isoformat()))
    if data.tags is not None:
        facts.append(("tags", orjson.dumps(sorted(set(data.tags))).decode()))
    if data.consents is not None:
        for channel in ("marketing", "sms", "email", "push"):
            granted = getattr(data.consents, channel)
            if granted is not None:
                facts.append((f"consent_{channel}", "1" if granted else "0"))
    if data.phone_hash is not None:
        facts.append(("phone_hash", data.phone_hash))
    elif data.phone is not None and hash_key is not None:
        facts.append(("phone_hash", phone_hash(hash_key, data.phone)))
    if data.email_hash is not None:
        facts.append(("email_hash", data.email_hash))
    elif data.email is not None and hash_key is not None:
        facts.append(("email_hash", email_hash(hash_key, data.email)))
    return "\n".join(f"{name}\t{value}" for name, value in facts)


def encode_event(
    event: Envelope, config: ShopConfig, hash_key: bytes | None, merged: bytes = b""
) -> EncodedEvent:
    """One event's fields. Contact details in clear are hashed here, or dropped without a key.

    ``merged`` is, for customer.identified, the anonymous history to merge (from crm_detach).
    """
    a = c = d = ""
    b: str | bytes = ""
    match event:
        case ev.ItemViewed() | ev.ItemFavorited():
            a, b = event.data.item_id, _clean(event.data.category)
        case ev.CartItemAdded():
            data = event.data
            a, b, c, d = data.item_id, _clean(data.category), str(data.qty), str(cents(data.price))
        case ev.CartItemRemoved():
            a, c = event.data.item_id, str(event.data.qty)
        case ev.OrderPlaced():
            lines = event.data.items
            b = "\n".join(f"{line.item_id}\t{_clean(line.category)}" for line in lines)
            c = str(cents(event.data.total))
            d = str(sum(line.qty for line in lines))
        case ev.OrderPaid():
            paid = cents(event.data.total)
            c, d = str(paid), str(config.points_for(paid))
        case ev.OrderRefunded():
            refunded = cents(event.data.amount)
            c, d = str(refunded), str(config.points_for(refunded))
        case ev.ReviewPosted():
            c = str(event.data.rating)
        case ev.SurveyAnswered():
            satisfied = event.data.score >= (4 if event.data.scale == 5 else 8)
            c = "1" if satisfied else "0"
        case ev.CustomerRegistered() | ev.CustomerUpdated():
            b = encode_facts(event.data, hash_key)
        case ev.CustomerIdentified():
            a, b = event.data.anonymousid, merged
        case _:
            pass
    # PACKED_FIELDS, each ended by the separator (ids and numbers never hold it).
    head = f"{event.time_ms}\x1f{event.type}\x1f{a}\x1f{c}\x1f{d}\x1f".encode()  # type: ignore[attr-defined]
    # b goes last and runs to the end: it may hold any byte (a merged history does).
    body = digest(event.id) + head + (b if isinstance(b, bytes) else b.encode())
    return f"{len(body):06x}".encode() + body


def contact_free(event: Envelope, hash_key: bytes | None) -> Envelope:
    """The event with a phone number or e-mail address in clear replaced by its keyed
    hash (dropped without a key), for anything kept of it beyond the profile."""
    if not isinstance(event, ev.CustomerRegistered | ev.CustomerUpdated):
        return event
    data = event.data
    if data.phone is None and data.email is None:
        return event
    hashed: dict[str, str | None] = {"phone": None, "email": None}
    if data.phone is not None and data.phone_hash is None and hash_key is not None:
        hashed["phone_hash"] = phone_hash(hash_key, data.phone)
    if data.email is not None and data.email_hash is None and hash_key is not None:
        hashed["email_hash"] = email_hash(hash_key, data.email)
    return event.model_copy(update={"data": data.model_copy(update=hashed)})
