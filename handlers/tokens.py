"""Per-shop API tokens: each answers for one shop, and Redis keeps only a keyed hash.

A token reads ``crm_<id>_<secret>``: the id names its entry (one field of the hash
``<prefix>:tokens``, holding the shop, the scope, a name and when it was made), and the
secret is checked against the entry's HMAC-SHA256 digest, in constant time. The
secret is shown once, when the token is made, and never stored; revoking a token
removes its entry, and it stops answering at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from crmstream.errors import ConfigError, InvalidShopError
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from schemas.types import SHOP_ID_RULE, is_shop_id

Scope = Literal["read", "admin"]
_PREFIX: Final = "crm_"
_ID_BYTES: Final = 6
_SECRET_BYTES: Final = 32
# Domain separation: the privacy hash key also hashes phone numbers and e-mail addresses.
_CONTEXT: Final = b"crmstream api token\x00"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows."""

    token_id: str
    shop: str
    scope: Scope
    name: str
    created_at: int  # epoch seconds


class TokenStore:
    def __init__(self, client: RedisClient, keys: Keys, hash_key: bytes | None) -> None:
        self._client = client
        self._key = keys.tokens
        self._hash_key = hash_key

    def _digest(self, secret: str) -> str:
        if not self._hash_key:
            raise ConfigError(
                "API tokens need a hash key: set CRMSTREAM_PRIVACY_HASH_KEY "
                "(the local stack makes one with `crmstream stack up`)"
            )
        return hmac.new(self._hash_key, _CONTEXT + secret.encode(), hashlib.sha256).hexdigest()

    async def create(self, shop: str, scope: Scope = "read", name: str = "") -> tuple[Grant, str]:
        """A new token for ``shop``: its grant, and the token itself (shown once)."""
        if not is_shop_id(shop):
            raise InvalidShopError(f"not a shop name: {shop[:80]!r} ({SHOP_ID_RULE})")
        token_id, secret = secrets.token_hex(_ID_BYTES), secrets.token_urlsafe(_SECRET_BYTES)
        grant = Grant(token_id, shop, scope, name, int(time.time()))
        entry = {
            "shop": shop,
            "scope": scope,
            "name": name,
            "created_at": grant.created_at,
            "digest": self._digest(secret),
        }
        await self._client.hset(self._key, token_id, orjson.dumps(entry))
        return grant, f"{_PREFIX}{token_id}_{secret}"

    async def list(self, shop: str | None = None) -> list[Grant]:
        found = [
            _grant(
                token_id.decode() if isinstance(token_id, bytes) else token_id, orjson.loads(raw)
            )
            for token_id, raw in (await self._client.hgetall(self._key)).items()
        ]
        return sorted(
            (grant for grant in found if shop is None or grant.shop == shop),
            key=lambda grant: (grant.shop, grant.created_at, grant.token_id),
        )

    async def revoke(self, token_id: str) -> bool:
        return bool(await self._client.hdel(self._key, token_id))

    async def verify(self, token: str) -> Grant | None:
        """The grant of a valid token, or None (malformed, unknown, revoked or wrong; and
        every token, where no hash key is set: none could have been made)."""
        if not self._hash_key or not token.startswith(_PREFIX):
            return None
        token_id, _, secret = token.removeprefix(_PREFIX).partition("_")
        if len(token_id) != 2 * _ID_BYTES or not secret:
            return None
        raw = await self._client.hget(self._key, token_id)
        if raw is None:
            return None
        entry = orjson.loads(raw)
        if not hmac.compare_digest(self._digest(secret), str(entry.get("digest", ""))):
            return None
        return _grant(token_id, entry)


def _grant(token_id: str, entry: dict[str, object]) -> Grant:
    scope: Scope = "admin" if entry.get("scope") == "admin" else "read"
    return Grant(
        token_id=token_id,
        shop=str(entry["shop"]),
        scope=scope,
        name=str(entry.get("name", "")),
        created_at=int(str(entry.get("created_at", 0))),
    )
