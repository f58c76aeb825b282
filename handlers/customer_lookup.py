"""Finding a customer by phone number, through the keyed hash the phone index keeps
(functions/upkeep.lua index_phones): the number itself is never stored."""

from __future__ import annotations

import re
from typing import Final

from crmstream.privacy import normalize_phone, phone_hash
from handlers.keys import Keys
from handlers.redis_client import RedisClient

_PHONE: Final = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")


def looks_like_phone(text: str) -> bool:
    return bool(_PHONE.match(text)) and len(normalize_phone(text)) >= 7


async def customer_by_phone(
    client: RedisClient, keys: Keys, hash_key: bytes | None, shop: str, phone: str
) -> str | None:
    """The customer of ``shop`` with this phone number, or None. A customer lives in one
    shard, unknown from the number alone: every shard is asked, in one round trip."""
    if hash_key is None or not looks_like_phone(phone):
        return None
    field = f"{shop}\x1f{phone_hash(hash_key, phone)}"
    pipe = client.pipeline(transaction=False)
    for base in keys.trigger_shards():
        pipe.hget(keys.phones(base), field)
    for found in await pipe.execute():
        if found is not None:
            return found.decode() if isinstance(found, bytes) else str(found)
    return None
