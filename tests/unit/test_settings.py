from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from crmstream.settings import (
    ConsoleSettings,
    KafkaSettings,
    PrivacySettings,
    RedisSettings,
    Settings,
    StackSettings,
    TopicSettings,
)
from streams.cli.child_worker import settings_env


def test_variables_map_to_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSTREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("CRMSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CRMSTREAM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("CRMSTREAM_REDIS_URL", "rediss://cache.internal:6380/2")
    monkeypatch.setenv("CRMSTREAM_TOPICS_EVENT_PARTITIONS", "16")
    monkeypatch.setenv("CRMSTREAM_STACK_REDIS_APPENDONLY", "false")

    settings = Settings()

    assert settings.kafka.bootstrap == "k1:9092,k2:9092"
    assert settings.kafka.first_host_port == ("k1", 9092)
    assert settings.redis.host_port == ("cache.internal", 6380)
    assert settings.topics.event_partitions == 16
    assert settings.stack.redis_appendonly is False
    assert "s3cret" not in repr(settings)
    assert settings.kafka.librdkafka()["sasl.password"] == "s3cret"


def test_the_consoles_caps_come_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS", "1000")
    monkeypatch.setenv("CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS", "50")
    assert Settings().console == ConsoleSettings(max_import_rows=1000, max_backtest_events=50)
    monkeypatch.setenv("CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS", "0")
    with pytest.raises(ValidationError, match="max_import_rows"):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.kafka = KafkaSettings()  # type: ignore[misc]


@pytest.mark.parametrize("bootstrap", ["localhost", "host:port", ""])
def test_bootstrap_needs_ports(bootstrap: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        KafkaSettings(bootstrap=bootstrap)


@pytest.mark.parametrize("prefix", ["", "a{b}", "a:b", "a b"])
def test_redis_prefix_cannot_break_key_structure(prefix: str) -> None:
    with pytest.raises(ValidationError):
        RedisSettings(key_prefix=prefix)


def test_topic_prefix_is_a_legal_topic_name() -> None:
    with pytest.raises(ValidationError):
        TopicSettings(prefix="crm/events")


def test_environment_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        kafka=KafkaSettings(bootstrap="b:1", sasl_username="u"),
        topics=TopicSettings(prefix="x.y", output_partitions=3),
    )
    for name, value in settings_env(original).items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_the_local_stack_makes_its_own_privacy_key_once_and_a_configured_one_wins(
    tmp_path: Path,
) -> None:
    from devstack.manager import ensure_local_hash_key  # noqa: PLC0415 -- under test

    local = Settings(
        stack=StackSettings(state_dir=tmp_path / "state", cache_dir=tmp_path),
        privacy=PrivacySettings(),  # whatever the environment says
    )
    assert local.privacy_hash_key() is None
    ensure_local_hash_key(local)
    key_file = tmp_path / "state" / "privacy-hash-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    made = local.privacy_hash_key()
    assert made is not None
    assert len(made) == 64
    ensure_local_hash_key(local)  # kept from then on
    assert local.privacy_hash_key() == made
    configured = local.model_copy(
        update={"privacy": PrivacySettings(hash_key=SecretStr("production-key"))}
    )
    assert configured.privacy_hash_key() == b"production-key"


def test_the_local_redis_is_durable_by_default() -> None:
    assert Settings().stack.redis_appendonly is True
