"""The ingest agent: raw event bytes in; valid events to the sink, the rest to the DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, cast

import faust
from faust.types import EventT, Message, StreamT
from mode.types.signals import SignalHandlerT

from crmstream.settings import Settings
from crmstream.topics import EVENT_STREAMS, TopicNames
from handlers.sink import EventSink, load_sink
from schemas.decode import Decoder, Rejected
from schemas.events import Envelope
from streams.dead_letters import DeadLetters, position

log = logging.getLogger("crmstream.ingest")

_RETRY_FIRST_S: Final = 0.2
_RETRY_MAX_S: Final = 10.0


class Ingest:
    """Decodes a batch, dead-letters what is refused and hands the rest to the sink."""

    def __init__(self, settings: Settings, sink: EventSink, dead_letters: DeadLetters) -> None:
        names = TopicNames.from_settings(settings.topics)
        self.stream_of_topic = {names.event(stream): stream for stream in EVENT_STREAMS}
        self.decoder = Decoder(
            max_bytes=settings.ingest.max_event_bytes,
            future_skew=timedelta(seconds=settings.ingest.future_skew_s),
        )
        self.sink = sink
        self.dead_letters = dead_letters

    async def process(self, batch: Sequence[EventT[bytes]]) -> None:
        not_after = self.decoder.not_after(datetime.now(UTC))
        decode = self.decoder.decode
        stream_of_topic = self.stream_of_topic
        valid: list[Envelope] = []
        refused: list[tuple[Message, Rejected]] = []
        for event in batch:
            message = event.message
            result = decode(
                message.value or b"", message.key, stream_of_topic.get(message.topic), not_after
            )
            if type(result) is Rejected:
                refused.append((message, result))
            else:
                valid.append(cast(Envelope, result))
        if refused:
            await _until_done(lambda: self.dead_letters.send(refused), "dead-letter topic", batch)
        if valid:
            await _until_done(lambda: self.sink.handle(valid), "event sink", batch)


async def _until_done(
    action: Callable[[], Awaitable[None]], what: str, batch: Sequence[EventT[bytes]]
) -> None:
    """Nothing is acknowledged before it is done: retry with backoff, never drop."""
    delay = _RETRY_FIRST_S
    while True:
        try:
            await action()
        except Exception:  # whatever failed, the batch stays unacknowledged
            log.exception(
                "%s failed for %s .. %s (%d messages); retrying in %.1fs",
                what,
                position(batch[0].message),
                position(batch[-1].message),
                len(batch),
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        else:
            return


def register_agents(app: faust.App, settings: Settings) -> Ingest:
    """Attach the ingest agent to the five event topics of ``settings``."""
    names = TopicNames.from_settings(settings.topics)
    events_topic = _raw_topic(app, *names.events)
    dlq_topic = _raw_topic(app, names.dlq)
    ingest = Ingest(
        settings, load_sink(settings.worker.event_sink, settings), DeadLetters(dlq_topic)
    )
    batch_max = settings.worker.batch_max
    within = settings.worker.batch_within_s

    async def ingest_agent(stream: StreamT[bytes]) -> None:
        # take_events is on the concrete Stream only, not on the StreamT interface.
        batches = cast("faust.Stream[bytes]", stream).take_events(batch_max, within=within)
        async for batch in batches:
            # Faust acknowledges the batch's offsets only once this body has returned.
            await ingest.process(batch)

    app.agent(events_topic, name="ingest")(ingest_agent)

    def close_sink(_sender: object, *_args: object, **_kw: object) -> Awaitable[None]:
        return ingest.sink.close()

    # **kwargs takes the `signal` keyword, but mypy matches mode's NamedArg type only by name.
    close_sink_handler = cast("SignalHandlerT[faust.App]", close_sink)

    # Sent after the consumer stopped: the sink has seen its last batch.
    app.on_before_shutdown.connect(close_sink_handler)
    return ingest


def _raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """Bytes in and out: validation is pydantic's job, not Faust's serializers'."""
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
