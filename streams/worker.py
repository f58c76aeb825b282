"""Running a worker process: topics first, then the Faust worker until a signal stops it."""

from __future__ import annotations

import sys

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from crmstream import metrics
from crmstream.admin import create_topics
from crmstream.settings import Settings
from streams.app import create_app
from streams.health import Readiness
from streams.ingest import register_ingest
from streams.logs import logging_config
from streams.preflight import check_services
from streams.views import register_views

_READY_EVERY_S = 5.0


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
    worker.execute_from_commandline()
