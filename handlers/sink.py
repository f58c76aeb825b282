"""The one interface between the ingest agents and whatever handles valid events."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, cast, runtime_checkable

from crmstream.errors import ConfigError
from crmstream.settings import Settings
from schemas.events import Envelope


@runtime_checkable
class EventSink(Protocol):
    """Takes each batch of valid events, in partition order, before its offsets are committed.

    ``handle`` returns once the batch's effects are durable; raising means none
    of them may be assumed, and the batch will be handed over again. ``partitions``
    says which partition each event was read from. What it returns is for metrics:
    a ``SortsDuplicates`` says which events were repeats.
    """

    async def handle(
        self, events: Sequence[Envelope], partitions: Sequence[int] | None = None
    ) -> object: ...

    async def close(self) -> None: ...


@runtime_checkable
class SortsDuplicates(Protocol):
    """What a sink's ``handle`` may return: how many events of each type were repeats."""

    @property
    def duplicates_by_type(self) -> Mapping[str, int]: ...


@runtime_checkable
class WatchesEventTime(Protocol):
    """A sink that wants to know how far event time has got, partition by partition."""

    def observe_event_time(
        self,
        newest: Mapping[tuple[str, int], datetime],
        behind: Mapping[tuple[str, int], int | None],
        *,
        written: Mapping[tuple[str, int], int],
        heard: Mapping[tuple[str, int], int],
        late: Mapping[tuple[str, int], int] | None = None,
        appended: Collection[str] | None = None,
    ) -> None:
        """Per topic partition: ``newest``, the batch's newest event time, and ``written``,
        its newest record timestamp (ms); ``behind``, those not caught up, with how many
        records are left (None: unknown); ``heard``, those caught up, with when the broker
        last answered so (ms); ``late``, those whose records all carried the broker's
        append time, with the largest (append time - event time) among them (ms).
        ``appended``: the topics the broker stamps with append times."""


@runtime_checkable
class KeepsOffsets(Protocol):
    """A sink whose store keeps the offsets its state reflects (handlers/offsets.py): the
    consumer resumes from them, checks them before each batch and records them after."""

    async def partitions_assigned(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Newly assigned partitions; returns where the store says to resume them."""

    async def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None: ...

    async def check_offsets(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Raises StateBehindError if the store lost what it recorded of these."""

    async def record_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None: ...


SinkFactory = Callable[[Settings], EventSink]


def load_sink(path: str, settings: Settings) -> EventSink:
    """Build the sink named "module:callable", e.g. ``handlers.flow:FlowRecorder.from_settings``."""
    module_name, _, attribute = path.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"event sink {path!r} cannot be loaded: {exc}") from exc
    if not callable(target):
        raise ConfigError(f"event sink {path!r} is not callable")
    sink = cast(SinkFactory, target)(settings)
    if not isinstance(sink, EventSink):
        raise ConfigError(f"event sink {path!r} did not return an EventSink")
    return sink
