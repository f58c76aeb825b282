"""The privacy hash key: the configured one, else (through the command line alone) the one
the local stack made for itself."""

from __future__ import annotations

import stat
from pathlib import Path

import click
import pytest
from pydantic import SecretStr

from crmstream.settings import PrivacySettings, Settings
from devstack import StackSettings
from devstack.manager import ensure_local_hash_key
from devstack.settings import local_hash_key_file
from streams.cli import cli
from streams.cli.child_worker import settings_env
from streams.cli.local_stack import stack_settings, with_local_hash_key


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StackSettings:
    """A local stack whose state lies under ``tmp_path``, and no key configured."""
    monkeypatch.delenv("CRMSTREAM_PRIVACY_HASH_KEY", raising=False)
    monkeypatch.setenv("CRMSTREAM_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CRMSTREAM_STACK_CACHE_DIR", str(tmp_path / "cache"))
    return StackSettings()


def made_key(stack: StackSettings) -> bytes:
    ensure_local_hash_key(stack)
    return local_hash_key_file(stack).read_bytes().strip()


def settings_of_the_command_line() -> tuple[Settings, StackSettings]:
    """What the `crmstream` group hands its commands."""
    assert cli.callback is not None
    with click.Context(cli) as ctx:
        ctx.invoke(cli.callback)
        assert isinstance(ctx.obj, Settings)
        return ctx.obj, stack_settings()


def test_the_local_stack_makes_its_key_once_readable_only_by_its_owner(
    stack: StackSettings,
) -> None:
    made = made_key(stack)
    assert stat.S_IMODE(local_hash_key_file(stack).stat().st_mode) == 0o600
    assert len(made) == 64
    assert made_key(stack) == made  # kept from then on


def test_the_engines_settings_never_read_the_stacks_key(stack: StackSettings) -> None:
    made_key(stack)
    assert Settings().privacy.hash_key is None
    assert Settings().privacy_hash_key() is None


def test_the_command_line_uses_the_stacks_key_when_none_is_configured(
    stack: StackSettings,
) -> None:
    assert settings_of_the_command_line()[0].privacy_hash_key() is None  # none made yet
    made = made_key(stack)
    settings, seen_stack = settings_of_the_command_line()
    assert settings.privacy_hash_key() == made
    assert seen_stack == stack
    # A worker the command line starts gets the same key with the rest of its settings.
    assert settings_env(settings)["CRMSTREAM_PRIVACY_HASH_KEY"].encode() == made


def test_a_configured_key_wins(stack: StackSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    made_key(stack)
    monkeypatch.setenv("CRMSTREAM_PRIVACY_HASH_KEY", "production-key")
    assert settings_of_the_command_line()[0].privacy_hash_key() == b"production-key"
    configured = Settings(privacy=PrivacySettings(hash_key=SecretStr("given")))
    assert with_local_hash_key(configured, stack).privacy_hash_key() == b"given"


def test_without_a_configured_or_a_local_key_there_is_none(stack: StackSettings) -> None:
    assert with_local_hash_key(Settings(), stack).privacy_hash_key() is None
