"""Running a worker process: topics first, then the Faust worker until a signal stops it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Awaitable
from typing import cast

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from mode.types.signals import SignalHandlerT

from crmstream import metrics
from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.flow import DeadLetterCounts
from handlers.key_tags import slot_tag
from handlers.keys import Keys
from handlers.pipeline import ProfilesAndTriggers
from handlers.redis_client import connect
from handlers.sink import EventSink, load_sink
from streams.app import create_app
from streams.consumer import EventConsumer
from streams.dead_letters import DeadLetters
from streams.health import Readiness
from streams.ingest import Ingest
from streams.logs import logging_config
from streams.preflight import check_services
from streams.trigger_tasks import register_triggers
from streams.views import register_views

_READY_EVERY_S = 5.0

# Allocations between two collections of the youngest generation (Python's default is 700).
_YOUNG_GENERATION_ALLOCATIONS = 50_000


def event_sink(settings: Settings) -> EventSink:
    """The stage valid events go to: the engine, unless the settings name another (a test's
    or an experiment's) to put in its place."""
    if settings.worker.event_sink is None:
        return ProfilesAndTriggers.from_settings(settings)
    return load_sink(settings.worker.event_sink, settings)


def register_ingest(app: faust.App, settings: Settings) -> tuple[Ingest, EventConsumer]:
    """Start the batch consumer of the five event topics with the app; close the sink after."""
    names = TopicNames.from_settings(settings.topics)
    dlq_topic = app.topic(
        names.dlq, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    counts = DeadLetterCounts(connect(settings.redis), Keys(settings.redis.key_prefix))
    ingest = Ingest(settings, event_sink(settings), DeadLetters(dlq_topic, counts))
    consumer = EventConsumer(settings, ingest, loop=app.loop, beacon=app.beacon)
    if isinstance(ingest.sink, ProfilesAndTriggers):
        register_triggers(app, settings, ingest.sink)

    async def start_consumer() -> None:
        # A runtime dependency of the app: started now, stopped (and drained) with it.
        await app.add_runtime_dependency(consumer)

    app.task(start_consumer)

    async def close_sink() -> None:
        await ingest.sink.close()
        await counts.close()

    def on_shutdown(_sender: object, *_args: object, **_kw: object) -> Awaitable[None]:
        return close_sink()

    # **kwargs takes the `signal` keyword, but mypy matches mode's NamedArg type only by name.
    app.on_before_shutdown.connect(cast("SignalHandlerT[faust.App]", on_shutdown))
    return ingest, consumer


def build_app(settings: Settings) -> faust.App:
    if not settings.metrics.enabled:
        metrics.disable()
    app = create_app(settings)
    ingest, consumer = register_ingest(app, settings)
    if settings.metrics.enabled:
        # Faust's own sensors, on the registry of ours; served at /metrics.
        setup_prometheus_sensors(app, registry=metrics.REGISTRY, name_prefix="crmstream_faust")
    readiness = Readiness(ingest, consumer, settings)
    register_views(app, settings, readiness)
    if settings.metrics.enabled:

        @app.timer(interval=_READY_EVERY_S)  # type: ignore[untyped-decorator]  # Faust leaves it untyped
        async def report_readiness() -> None:
            metrics.READY.set(0 if await readiness.problems() else 1)

    return app


def settle_heap() -> None:
    """Keep the garbage collector off what lives as long as the process.

    The heap built before the worker runs (Faust, aiokafka, pydantic's schemas, the
    modules) is never garbage, but every full collection walked it again: 15 of them in
    ``bench full`` over 60,000 events, 1.3 s of the worker's 10 s of CPU. Frozen, it is not
    walked. A batch's objects die by reference count once the batch is done; with the youngest
    generation collected every 50,000 allocations instead of 700, most are freed before a
    collection sees them, so few reach the older generations. The collector's share fell from
    1.5 s to 0.15 s of that run.

    Tables the process keeps for good are built first, and frozen with the rest: the hash
    tag of each Redis Cluster slot (0.2 s) was built by the first batch, which waited for it."""
    slot_tag(0)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_GENERATION_ALLOCATIONS, older, oldest)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Block running one worker of the consumer group."""
    check_services(settings)
    # Declared here with our partition counts and retention rather than Faust's defaults.
    create_topics(settings)
    app = build_app(settings)
    worker = faust.Worker(
        app,
        loglevel=loglevel,
        logging_config=logging_config(loglevel, settings.worker.log_format),
        # The banner and the start-up spinner are for a person at a terminal.
        quiet=not sys.stdout.isatty(),
    )
    # Faust's start-up spinner turns the root logger down to DEBUG to spin on every record,
    # and leaves it there: every library's debug line is then built and thrown away, a few
    # percent of the worker's time. The log level asked for is the one that holds.
    worker.spinner = None
    settle_heap()
    worker.execute_from_commandline()
