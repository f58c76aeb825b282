"""The secured stack (`crmstream stack up --secure`): a broker that takes only SASL_SSL
with SCRAM-SHA-512 and a Redis that takes only TLS with an ACL user. The core
integration tests run here again, unchanged, with ``settings`` pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crmstream.errors import CrmStreamError
from crmstream.settings import Settings
from devstack import Stack, StackSettings
from devstack.secure import secure_settings
from streams.cli.local_stack import with_local_hash_key
from tests.support import isolated, wipe


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/secure/" in item.nodeid:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.secure)


@pytest.fixture(scope="session")
def secured_base(base_settings: Settings, stack_settings: StackSettings) -> Settings:
    try:
        Stack(base_settings, stack_settings, secure=True).up()
    except CrmStreamError as exc:
        pytest.fail(f"the secured tests need the secured stack: {exc}", pytrace=False)
    return with_local_hash_key(secure_settings(base_settings, stack_settings), stack_settings)


@pytest.fixture
def settings(secured_base: Settings, namespace: str) -> Iterator[Settings]:
    """Settings of this test's own, as a client of the secured broker and Redis."""
    mine = isolated(secured_base, namespace)
    yield mine
    wipe(mine)
