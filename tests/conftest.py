"""Fixtures shared by every test.

Integration tests talk to the real Kafka broker and Redis. When those cannot
be had, the tests fail; they never skip, on CI or anywhere else, because a
green run that left out the real services proves nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from crmstream.errors import CrmStreamError
from crmstream.settings import Settings
from devstack import ServiceStatus, Stack
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from tests.support import isolated, new_namespace, wipe


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> list[ServiceStatus]:
    """The real Kafka and Redis, started if nothing answers at the configured addresses."""
    try:
        return Stack(base_settings).up()
    except CrmStreamError as exc:
        pytest.fail(f"integration tests need the real Kafka and Redis: {exc}", pytrace=False)


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
def settings(
    stack: list[ServiceStatus], base_settings: Settings, namespace: str
) -> Iterator[Settings]:
    """Settings with this test's own topics, Redis keys, consumer group and web port."""
    mine = isolated(base_settings, namespace)
    yield mine
    wipe(mine)


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[ProfileReader]:
    """Profiles as the HTTP API reads them, from this test's Redis key space (whichever
    stack ``settings`` points at)."""
    client = connect(settings.redis)
    yield ProfileReader(
        client, Keys(settings.redis.key_prefix), ShopConfigs(settings.profiles.shop_config_dir)
    )
    await client.aclose()
