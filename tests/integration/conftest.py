from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[ProfileReader]:
    client = connect(settings.redis)
    yield ProfileReader(
        client, Keys(settings.redis.key_prefix), ShopConfigs(settings.profiles.shop_config_dir)
    )
    await client.aclose()
