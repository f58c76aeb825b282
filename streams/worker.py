"""Running a worker process: topics first, then the Faust worker until a signal stops it."""

from __future__ import annotations

import faust

from crmstream.admin import create_topics
from crmstream.settings import Settings
from streams.app import create_app
from streams.ingest import register_ingest
from streams.views import register_views


def build_app(settings: Settings) -> faust.App:
    app = create_app(settings)
    register_ingest(app, settings)
    register_views(app, settings)
    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Block running one worker of the consumer group."""
    # Declared here with our partition counts and retention rather than Faust's defaults.
    create_topics(settings)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
