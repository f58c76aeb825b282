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
from devstack import ServiceStatus, Stack, StackSettings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from streams.cli.local_stack import with_local_hash_key
from tests.support import isolated, new_namespace, wipe


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    return StackSettings()


@pytest.fixture(scope="session")
def stack(base_settings: Settings, stack_settings: StackSettings) -> list[ServiceStatus]:
    """The real Kafka and Redis, started if nothing answers at the configured addresses."""
    try:
        return Stack(base_settings, stack_settings).up()
    except CrmStreamError as exc:
        pytest.fail(f"integration tests need the real Kafka and Redis: {exc}", pytrace=False)


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
def settings(
    stack: list[ServiceStatus],
    base_settings: Settings,
    stack_settings: StackSettings,
    namespace: str,
) -> Iterator[Settings]:
    """Settings with this test's own topics, Redis keys, consumer group and web port, and
    the privacy hash key as the command line has it (the local stack's, made by `stack up`,
    unless one is configured)."""
    mine = isolated(with_local_hash_key(base_settings, stack_settings), namespace)
    yield mine
    wipe(mine)


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[ProfileReader]:
    """Profiles as the HTTP API reads them, from this test's Redis key space (whichever
    stack ``settings`` points at)."""
    client = connect(settings.redis)
    yield ProfileReader(
        client, Keys(settings.redis.key_prefix), ShopConfigs(shop_configs_folder(settings.profiles))
    )
    await client.aclose()
