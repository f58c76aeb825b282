"""The agents: batches of raw event bytes in, calls into handlers out."""

from __future__ import annotations

from typing import cast

import faust
from faust.types import StreamT

from crmstream.settings import Settings
from crmstream.topics import EVENT_STREAMS, TopicNames
from handlers.flow import FlowRecorder
from handlers.keys import Keys
from handlers.redis_client import connect


def register_agents(app: faust.App, settings: Settings) -> None:
    """Attach the ingest agent to the five event topics of ``settings``."""
    names = TopicNames.from_settings(settings.topics)
    stream_of_topic = {names.event(stream): stream for stream in EVENT_STREAMS}
    events_topic = app.topic(
        *names.events, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw",
    )  # fmt: skip
    flow = FlowRecorder(connect(settings.redis), Keys(settings.redis.key_prefix))
    batch_max = settings.worker.batch_max
    within = settings.worker.batch_within_s

    async def ingest(stream: StreamT[bytes]) -> None:
        # take_events is on the concrete Stream only, not on the StreamT interface.
        batches = cast("faust.Stream[bytes]", stream).take_events(batch_max, within=within)
        async for batch in batches:
            # Faust acknowledges the batch's offsets only once this body has returned.
            await flow.record(stream_of_topic[event.message.topic] for event in batch)

    app.agent(events_topic, name="ingest")(ingest)
