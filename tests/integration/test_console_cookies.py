"""The console's cookies carry a shop's API token: behind a TLS-terminating proxy
(CRMSTREAM_CONSOLE_SECURE_COOKIE=true) every cookie it sets is marked Secure, so that a
browser never sends the token over plain HTTP; served as it is, none is (a browser would
then drop it on http://127.0.0.1)."""

from __future__ import annotations

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from console.app import build_app
from console.auth import TOKEN_COOKIE
from console.context import LANGUAGE_COOKIE
from crmstream.settings import ConsoleSettings, Settings
from handlers.keys import Keys
from handlers.redis_client import connect
from handlers.tokens import TokenStore

pytestmark = pytest.mark.integration


def cookies_set(response: ClientResponse) -> dict[str, set[str]]:
    """Each cookie the response sets, with the attributes of its Set-Cookie header
    (lowercase, values left out but SameSite's)."""
    found: dict[str, set[str]] = {}
    for header in response.headers.getall("Set-Cookie", []):
        name_value, *attributes = (part.strip() for part in header.split(";"))
        found[name_value.split("=", 1)[0]] = {
            part.lower() if part.lower().startswith("samesite") else part.split("=")[0].lower()
            for part in attributes
        }
    return found


async def token_of(settings: Settings, shop: str) -> str:
    client = connect(settings.redis)
    try:
        store = TokenStore(client, Keys(settings.redis.key_prefix), settings.privacy_hash_key())
        _, token = await store.create(shop, "admin", name="cookie-test")
        return token
    finally:
        await client.aclose()


def test_the_variable_names_the_console_s_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().console.secure_cookie is False
    monkeypatch.setenv("CRMSTREAM_CONSOLE_SECURE_COOKIE", "true")
    assert Settings().console.secure_cookie is True


@pytest.mark.parametrize("behind_tls", [False, True], ids=["plain", "behind-tls"])
async def test_cookies_are_secure_exactly_when_served_behind_tls(
    settings: Settings, behind_tls: bool
) -> None:
    mine = settings.model_copy(update={"console": ConsoleSettings(secure_cookie=behind_tls)})
    token = await token_of(mine, "tea-house")
    async with TestClient(TestServer(build_app(mine))) as browser:
        signed_in = await browser.post("/signin", data={"token": token}, allow_redirects=False)
        assert signed_in.status == 303
        in_english = await browser.get("/signin?lang=en")
        assert in_english.status == 200
        # As a browser sends it back (over https, behind the proxy): the test's own client
        # keeps no cookie for a bare address such as 127.0.0.1.
        signed_out = await browser.post(
            "/signout", headers={"Cookie": f"{TOKEN_COOKIE}={token}"}, allow_redirects=False
        )
        assert signed_out.status == 303

        for response, name in [
            (signed_in, TOKEN_COOKIE),
            (in_english, LANGUAGE_COOKIE),
            (signed_out, TOKEN_COOKIE),
        ]:
            attributes = cookies_set(response)[name]
            where = f"{name} from {response.method} {response.url.path}: {sorted(attributes)}"
            assert ("secure" in attributes) is behind_tls, where
            assert {"httponly", "samesite=strict"} <= attributes, where
