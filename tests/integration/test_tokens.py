"""API tokens in Redis: only a keyed hash kept, each for one shop, revoked at once."""

from __future__ import annotations

import pytest

from crmstream.errors import ConfigError, InvalidShopError
from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.redis_client import connect
from handlers.tokens import TokenStore
from tests.support import text


async def test_a_token_is_made_listed_checked_and_revoked(settings: Settings) -> None:
    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    store = TokenStore(client, keys, b"a key of the test's")
    try:
        grant, token = await store.create("tea-house", "admin", "service desk")
        _, other = await store.create("wine-cellar")
        assert token.startswith(f"crm_{grant.token_id}_")
        # Only the digest is kept: the secret appears nowhere in Redis.
        stored = "".join(text(k) + text(v) for k, v in (await client.hgetall(keys.tokens)).items())
        secret = token.removeprefix(f"crm_{grant.token_id}_")
        assert len(secret) >= 40  # 32 random bytes, in URL-safe base64
        assert secret not in stored
        assert await store.verify(token) == grant
        assert (await store.verify(other)).shop == "wine-cellar"  # type: ignore[union-attr]
        assert [g.shop for g in await store.list()] == ["tea-house", "wine-cellar"]
        assert [g.name for g in await store.list("tea-house")] == ["service desk"]
        # Another key, a changed secret, a changed id, junk: none of them passes.
        assert await TokenStore(client, keys, b"another key").verify(token) is None
        assert await store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert await store.verify(token.replace(grant.token_id, "0" * 12)) is None
        for junk in ("", "crm_", "Bearer x", "crm_x_y", token + "\n"):
            assert await store.verify(junk) is None
        assert await store.revoke(grant.token_id)
        assert not await store.revoke(grant.token_id)
        assert await store.verify(token) is None
        with pytest.raises(InvalidShopError):
            await store.create("../tea-house")
        with pytest.raises(ConfigError, match="CRMSTREAM_PRIVACY_HASH_KEY"):
            await TokenStore(client, keys, None).create("tea-house")
        assert await TokenStore(client, keys, None).verify(other) is None
    finally:
        await client.aclose()


async def test_a_secret_with_underscores_still_verifies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # token_urlsafe's alphabet has "_", so the id ends at the first one after the prefix.
    monkeypatch.setattr("handlers.tokens.secrets.token_urlsafe", lambda _n: "_a_b__c_")
    client = connect(settings.redis)
    store = TokenStore(client, Keys(settings.redis.key_prefix), b"a key of the test's")
    try:
        grant, token = await store.create("tea-house")
        assert token == f"crm_{grant.token_id}__a_b__c_"
        assert await store.verify(token) == grant
        assert await store.verify(token.removesuffix("_")) is None
    finally:
        await client.aclose()
