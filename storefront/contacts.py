"""Contact details sent as keyed hashes, so that they never reach Kafka in clear.

The event topics keep what storefronts send for their whole retention, out of reach of
an erasure. A storefront that needs nothing downstream to read a phone number or an
e-mail address sends their keyed hashes instead (``phone_hash``, ``email_hash``): the
very HMAC-SHA256 the engine keeps (crmstream.privacy), under the same
``CRMSTREAM_PRIVACY_HASH_KEY``, so the profile and the phone index come out the same
whichever form was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from crmstream.errors import ConfigError
from crmstream.privacy import email_hash, phone_hash
from schemas import events as ev
from schemas.events import Envelope

_HASHES: Final[dict[str, Callable[[bytes, str], str]]] = {
    "phone": phone_hash,
    "email": email_hash,
}


def required_key(key: bytes | None) -> bytes:
    if key is None:
        raise ConfigError(
            "hashing contact details needs the engine's key: set CRMSTREAM_PRIVACY_HASH_KEY "
            "(the same as the workers')"
        )
    return key


def without_clear_contacts(value: bytes, event: Envelope, key: bytes) -> bytes:
    """``value`` (the JSON of ``event``, already valid) with a phone number or e-mail
    address in clear replaced by its keyed hash; the same bytes when there is none. A
    hash the storefront sent itself is kept, as the engine would keep it."""
    if not isinstance(event, ev.CustomerRegistered | ev.CustomerUpdated):
        return value
    if event.data.phone is None and event.data.email is None:
        return value
    document: dict[str, Any] = orjson.loads(value)
    data = document["data"]
    for name, hashed in _HASHES.items():
        clear = data.pop(name, None)
        if clear is not None:
            data.setdefault(f"{name}_hash", hashed(key, clear))
    return orjson.dumps(document)
