"""Fixtures shared by every test.

Integration tests talk to the real Kafka broker and Redis. When those cannot
be had, the tests fail; they never skip, on CI or anywhere else, because a
green run that left out the real services proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crmstream.errors import CrmStreamError
from crmstream.settings import Settings
from crmstream.stack import ServiceStatus, Stack
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
