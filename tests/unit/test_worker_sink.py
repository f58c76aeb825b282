"""Which stage a worker hands valid events to: the engine, wired by streams/worker.py, unless
the settings name another."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from crmstream.errors import ConfigError
from crmstream.settings import Settings
from handlers.pipeline import ProfilesAndTriggers
from schemas.events import Envelope
from streams import worker


class StubSink:
    """An EventSink that does nothing, named by the settings as a test's sink would be."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> StubSink:
        return cls(settings)

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> None:
        return None

    async def close(self) -> None:
        return None


def named(sink: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"event_sink": sink})}
    )


def test_unset_the_worker_builds_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Settings] = []
    engine = StubSink(Settings())

    def from_settings(settings: Settings) -> StubSink:
        built.append(settings)
        return engine

    monkeypatch.setattr(ProfilesAndTriggers, "from_settings", from_settings)
    settings = named(None)
    assert worker.event_sink(settings) is engine
    assert built == [settings]


def test_a_named_sink_takes_the_engines_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_engine(settings: Settings) -> ProfilesAndTriggers:
        raise AssertionError("the engine was built though another sink was named")

    monkeypatch.setattr(ProfilesAndTriggers, "from_settings", no_engine)
    settings = named(f"{__name__}:StubSink.from_settings")
    sink = worker.event_sink(settings)
    assert isinstance(sink, StubSink)
    assert sink.settings is settings


def test_a_sink_that_cannot_be_loaded_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="cannot be loaded"):
        worker.event_sink(named("tests.nowhere:Sink.from_settings"))
