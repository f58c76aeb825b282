from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from crmstream.connections import KafkaSettings, RedisSettings
from crmstream.settings import ConsoleSettings, Settings, TopicSettings
from devstack import StackSettings
from rules import PACKAGED_JOURNEYS, PACKAGED_RULES, PACKAGED_SEGMENTS, PACKAGED_SHOP_CONFIGS
from rules.folders import journeys_folder, rules_folder, segments_folder, shop_configs_folder
from streams.cli.child_worker import settings_env


def test_variables_map_to_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSTREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("CRMSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CRMSTREAM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("CRMSTREAM_REDIS_URL", "rediss://cache.internal:6380/2")
    monkeypatch.setenv("CRMSTREAM_TOPICS_EVENT_PARTITIONS", "16")

    settings = Settings()

    assert settings.kafka.bootstrap == "k1:9092,k2:9092"
    assert settings.kafka.first_host_port == ("k1", 9092)
    assert settings.redis.host_port == ("cache.internal", 6380)
    assert settings.topics.event_partitions == 16
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


def test_the_local_stack_has_settings_of_its_own_under_the_same_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CRMSTREAM_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CRMSTREAM_STACK_REDIS_APPENDONLY", "false")
    monkeypatch.setenv("CRMSTREAM_STACK_REDIS_CLUSTER_FIRST_PORT", "7100")
    stack = StackSettings()
    assert stack.state_dir == tmp_path / "state"
    assert stack.redis_appendonly is False
    assert stack.redis_cluster_first_port == 7100
    assert "stack" not in Settings.model_fields
    with pytest.raises(ValidationError):
        stack.state_dir = tmp_path  # type: ignore[misc]  # frozen, which is under test


def test_the_local_redis_is_durable_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMSTREAM_STACK_REDIS_APPENDONLY", raising=False)
    assert StackSettings().redis_appendonly is True


def test_unset_folders_are_the_packaged_ones_and_a_configured_one_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in (
        "TRIGGERS_RULES_DIR", "TRIGGERS_JOURNEYS_DIR", "SEGMENTS_SEGMENTS_DIR",
        "PROFILES_SHOP_CONFIG_DIR",
    ):  # fmt: skip
        monkeypatch.delenv(f"CRMSTREAM_{variable}", raising=False)
    shipped = Settings()
    assert (shipped.triggers.rules_dir, shipped.segments.segments_dir) == (None, None)
    assert shipped.profiles.shop_config_dir is None
    assert rules_folder(shipped.triggers) == PACKAGED_RULES
    assert journeys_folder(shipped.triggers) == PACKAGED_JOURNEYS
    assert segments_folder(shipped.segments) == PACKAGED_SEGMENTS
    assert shop_configs_folder(shipped.profiles) == PACKAGED_SHOP_CONFIGS
    assert any(PACKAGED_RULES.glob("*.yaml"))
    assert any(PACKAGED_JOURNEYS.glob("*.yaml"))
    assert any(PACKAGED_SEGMENTS.glob("*.yaml"))
    assert (PACKAGED_SHOP_CONFIGS / "default.yaml").is_file()

    monkeypatch.setenv("CRMSTREAM_TRIGGERS_RULES_DIR", str(tmp_path / "rules"))
    monkeypatch.setenv("CRMSTREAM_TRIGGERS_JOURNEYS_DIR", str(tmp_path / "journeys"))
    monkeypatch.setenv("CRMSTREAM_SEGMENTS_SEGMENTS_DIR", str(tmp_path / "segments"))
    monkeypatch.setenv("CRMSTREAM_PROFILES_SHOP_CONFIG_DIR", str(tmp_path / "shops"))
    mine = Settings()
    assert rules_folder(mine.triggers) == tmp_path / "rules"
    assert journeys_folder(mine.triggers) == tmp_path / "journeys"
    assert segments_folder(mine.segments) == tmp_path / "segments"
    assert shop_configs_folder(mine.profiles) == tmp_path / "shops"
    # A child process left unset finds the packaged ones of its own.
    assert "CRMSTREAM_TRIGGERS_RULES_DIR" not in settings_env(shipped)


def test_the_event_sink_is_unset_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMSTREAM_WORKER_EVENT_SINK", raising=False)
    assert Settings().worker.event_sink is None
    monkeypatch.setenv("CRMSTREAM_WORKER_EVENT_SINK", "tests.sinks:RecordingSink.from_settings")
    assert Settings().worker.event_sink == "tests.sinks:RecordingSink.from_settings"
    monkeypatch.setenv("CRMSTREAM_WORKER_EVENT_SINK", "not a module path")
    with pytest.raises(ValidationError, match="event_sink"):
        Settings()
