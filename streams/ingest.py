"""The ingest step: raw records in; valid events to the sink, the rest to the dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, cast, overload

from crmstream import logcontext, metrics
from crmstream.errors import StateBehindError
from crmstream.settings import Settings
from crmstream.topics import EVENT_STREAMS, TopicNames
from handlers.sink import EventSink, KeepsOffsets, SortsDuplicates, WatchesEventTime
from schemas.decode import Decoder, Rejected
from schemas.events import STREAM_OF_TYPE, Envelope
from streams.dead_letters import DeadLetters, position
from streams.records import Record

log = logging.getLogger("crmstream.ingest")

_LOG_APPEND_TIME: Final = 1  # a record's timestamp_type when the broker stamped it
_RETRY_FIRST_S: Final = 0.2
_RETRY_MAX_S: Final = 10.0


@dataclass(slots=True)
class Decoded:
    """A batch, decoded: what goes to the sink and what goes to the dead-letter topic."""

    batch: Sequence[Record]
    valid: list[Envelope] = field(default_factory=list)
    refused: list[tuple[Record, Rejected]] = field(default_factory=list)
    # Per (topic, partition): the newest event time in the batch.
    newest: dict[tuple[str, int], datetime] = field(default_factory=dict)
    # Per (topic, partition): the newest record timestamp in the batch (when the storefront
    # wrote it, ms); set by the consumer.
    written: dict[tuple[str, int], int] = field(default_factory=dict)
    # Partitions with records still to read after this batch, and how many (None: unknown),
    # and those caught up, with when the broker last answered so (ms); set by the consumer.
    behind: dict[tuple[str, int], int | None] = field(default_factory=dict)
    heard: dict[tuple[str, int], int] = field(default_factory=dict)
    # Per (topic, partition) whose valid records all carried the broker's append time: the
    # largest (append time - event time) among them, ms (handlers/timing/allowance.py).
    late: dict[tuple[str, int], int] = field(default_factory=dict)
    # Event type → valid events of the batch (a type travels on one topic only).
    kinds: Counter[str] = field(default_factory=Counter)
    # The record each valid event came from, aligned with ``valid`` (for log lines).
    sources: list[Record] = field(default_factory=list)
    # The partition each valid event was read from, aligned with ``valid``.
    partitions: list[int] = field(default_factory=list)

    def only(self, owned: set[tuple[str, int]]) -> Decoded:
        """The part of this batch read from partitions still ``owned`` (a rebalance may have
        taken some since it was fetched: their next owner reads them)."""
        kept = Decoded([r for r in self.batch if (r.topic, r.partition) in owned])
        kept.behind = {tp: lag for tp, lag in self.behind.items() if tp in owned}
        kept.refused = [(r, why) for r, why in self.refused if (r.topic, r.partition) in owned]
        kept.newest = {tp: at for tp, at in self.newest.items() if tp in owned}
        kept.written = {tp: at for tp, at in self.written.items() if tp in owned}
        kept.heard = {tp: at for tp, at in self.heard.items() if tp in owned}
        kept.late = {tp: ms for tp, ms in self.late.items() if tp in owned}
        for event, record, partition in zip(self.valid, self.sources, self.partitions, strict=True):
            if (record.topic, record.partition) in owned:
                kept.valid.append(event)
                kept.sources.append(record)
                kept.partitions.append(partition)
                kept.kinds[event.type] += 1  # type: ignore[attr-defined]
        return kept


class Ingest:
    """Decodes a batch, dead-letters what is refused and hands the rest to the sink."""

    def __init__(self, settings: Settings, sink: EventSink, dead_letters: DeadLetters) -> None:
        names = TopicNames.from_settings(settings.topics)
        self.stream_of_topic = {names.event(stream): stream for stream in EVENT_STREAMS}
        self.topic_of_type = {kind: names.event(stream) for kind, stream in STREAM_OF_TYPE.items()}
        self.decoder = Decoder(
            max_bytes=settings.ingest.max_event_bytes,
            future_skew=timedelta(seconds=settings.ingest.future_skew_s),
        )
        self.sink = sink
        self.dead_letters = dead_letters
        self.metrics = settings.metrics.enabled
        # The event topics the broker stamps with append times (set by the consumer, from
        # their configuration): how late writes are is measured on them.
        self.appended: frozenset[str] = frozenset()
        # Since when the sink has been failing (Redis down…): the worker is not ready then.
        self.failing_since: float | None = None

    def decode(self, batch: Sequence[Record]) -> Decoded:
        """Split a batch into valid events and refused records (pure CPU, no I/O)."""
        not_after = self.decoder.not_after(datetime.now(UTC))
        decode = self.decoder.decode
        stream_of_topic = self.stream_of_topic
        decoded = Decoded(batch)
        valid, refused, newest, kinds = (
            decoded.valid,
            decoded.refused,
            decoded.newest,
            decoded.kinds,
        )
        sources, partitions, late = decoded.sources, decoded.partitions, decoded.late
        producer_stamped: set[tuple[str, int]] = set()
        newest_ms: dict[tuple[str, int], int] = {}  # compared as integers: cheaper than times
        for record in batch:
            result = decode(
                record.value or b"", record.key, stream_of_topic.get(record.topic), not_after
            )
            if type(result) is Rejected:
                refused.append((record, result))
            else:
                event = cast(Envelope, result)
                valid.append(event)
                sources.append(record)
                partitions.append(record.partition)
                kinds[event.type] += 1  # type: ignore[attr-defined]
                partition = (record.topic, record.partition)
                at_ms = event.time_ms
                seen = newest_ms.get(partition)
                if seen is None or at_ms > seen:
                    newest_ms[partition] = at_ms
                    newest[partition] = event.time
                if record.timestamp_type == _LOG_APPEND_TIME:
                    lateness = record.timestamp - at_ms
                    if partition not in late or lateness > late[partition]:
                        late[partition] = lateness
                else:
                    producer_stamped.add(partition)
        for partition in producer_stamped:
            late.pop(partition, None)
        return decoded

    async def deliver(
        self, decoded: Decoded, offsets: Mapping[tuple[str, int], int] | None = None
    ) -> None:
        """Returns once every record is either with the sink or in the dead-letter topic,
        and ``offsets`` (the next offset of each partition of the batch) are recorded by a
        sink that keeps them. Raises StateBehindError when that sink's store lost writes
        it had recorded: the partitions it names are to be read again."""
        batch = decoded.batch
        started = time.perf_counter()
        sink = self.sink
        keeper = sink if offsets and isinstance(sink, KeepsOffsets) else None
        keeps = offsets if keeper is not None else None
        if keeper is not None and offsets:
            await _until_done(lambda: keeper.check_offsets(offsets), "offsets check", batch, self)
        if decoded.refused:
            await _until_done(
                lambda: self.dead_letters.send(decoded.refused), "dead-letter topic", batch
            )
        handled: object = None
        if decoded.valid or keeps is not None:

            async def hand_over() -> None:
                nonlocal handled
                if decoded.valid:
                    # A stage that logs a problem with an event can say where it came from.
                    logcontext.handling(_Ids(decoded.valid), lambda n: position(decoded.sources[n]))
                    handled = await sink.handle(decoded.valid, decoded.partitions)
                if keeper is not None and offsets:
                    await keeper.record_offsets(offsets)

            await _until_done(hand_over, "event sink", batch, self)
        self.observe(decoded.newest, decoded.behind, decoded.written, decoded.heard, decoded.late)
        if self.metrics:
            _measure(decoded, handled, time.perf_counter() - started, self.topic_of_type)

    def observe(
        self,
        newest: Mapping[tuple[str, int], datetime],
        behind: Mapping[tuple[str, int], int | None],
        written: Mapping[tuple[str, int], int],
        heard: Mapping[tuple[str, int], int],
        late: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """How far each partition has been read, for a sink that keeps event time."""
        if isinstance(self.sink, WatchesEventTime):
            self.sink.observe_event_time(
                newest, behind, written=written, heard=heard, late=late, appended=self.appended
            )

    async def process(self, batch: Sequence[Record]) -> None:
        await self.deliver(self.decode(batch))


class _Ids(Sequence[str]):
    """The ids of a batch's events, read only when a log line asks."""

    def __init__(self, events: Sequence[Envelope]) -> None:
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, n: int) -> str: ...
    @overload
    def __getitem__(self, n: slice) -> Sequence[str]: ...
    def __getitem__(self, n: int | slice) -> str | Sequence[str]:
        if isinstance(n, slice):
            return [event.id for event in self._events[n]]
        return self._events[n].id


def _measure(
    decoded: Decoded, handled: object, seconds: float, topic_of_type: Mapping[str, str]
) -> None:
    """The batch's counts, added once per label set (never once per event)."""
    metrics.BATCH_SIZE.observe(len(decoded.batch))
    metrics.BATCH_SECONDS.observe(seconds)
    duplicates: Mapping[str, int] = (
        handled.duplicates_by_type if isinstance(handled, SortsDuplicates) else {}
    )
    for kind, count in decoded.kinds.items():
        topic = topic_of_type[kind]
        repeats = duplicates.get(kind, 0)
        if repeats:
            metrics.EVENTS.labels(topic, kind, "duplicate").inc(repeats)
        if count > repeats:
            metrics.EVENTS.labels(topic, kind, "processed").inc(count - repeats)
    if decoded.refused:
        invalid = Counter(
            (record.topic, rejected.reason.value) for record, rejected in decoded.refused
        )
        for (topic, reason), count in invalid.items():
            metrics.EVENTS.labels(topic, "unknown", "invalid").inc(count)
            metrics.DEAD_LETTERS.labels(reason).inc(count)
    now = datetime.now(UTC)
    for newest in decoded.newest.values():
        metrics.EVENT_LAG.observe(max(0.0, (now - newest).total_seconds()))


async def _until_done(
    action: Callable[[], Awaitable[None]],
    what: str,
    batch: Sequence[Record],
    ingest: Ingest | None = None,
) -> None:
    """Nothing is acknowledged before it is done: retry with backoff, never drop. While
    the sink fails, ``ingest.failing_since`` says since when."""
    delay = _RETRY_FIRST_S
    while True:
        try:
            await action()
        except StateBehindError:
            raise  # not to retry: the consumer reads the partitions again
        except Exception:  # whatever failed, the batch stays uncommitted
            if ingest is not None and ingest.failing_since is None:
                ingest.failing_since = time.monotonic()
            first = batch[0]
            log.exception(
                "%s failed for %s .. %s (%d records); retrying in %.1fs",
                what,
                position(batch[0]),
                position(batch[-1]),
                len(batch),
                delay,
                extra={"topic": first.topic, "partition": first.partition, "offset": first.offset},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        else:
            if ingest is not None:
                ingest.failing_since = None
            return
