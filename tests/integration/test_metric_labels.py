"""Every label of /metrics has a bounded set of values, and no customer is ever in one.

A real worker takes a varied run (three shops, hundreds of customers, the rule pack
firing, duplicates, dead letters, refused API calls), then its /metrics is read: every
label of every crmstream_* series must hold a value from the set its definition in
crmstream/metrics.py allows (Faust's own sensors included), and nothing that names a
shop, a customer, an event or a trigger may appear anywhere in the page. Shops are not
bounded (a platform takes new merchants): they appear in no label unless
CRMSTREAM_METRICS_PER_SHOP is set, which this run leaves off, as by default."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, get_args

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.triggers.work import OUTCOME_LABEL
from rules.folders import journeys_folder, rules_folder, segments_folder
from schemas.errors import Reason
from schemas.events import STREAM_OF_TYPE
from schemas.triggers import Channel
from storefront.simulator import SHOPS, SimulationConfig, Simulator, ending_at
from tests.integration.test_profiles import publish
from tests.support import consume, produce, running_worker, value_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EVENTS: Final = 1_500
# The names crmstream/handlers give their Redis Function libraries (FunctionLibrary): the
# partitions' walks (handlers/timing) are "timers".
REDIS_STAGES: Final = {"profile", "segment", "offsets", "trigger", "timers", "journeys"}
# What a journey move is counted as (crmstream_journey_moves_total).
JOURNEY_OUTCOMES: Final = {"entered", "sent", "held", "capped", "no_consent", "exited"}


def allowed_values(settings: Settings) -> dict[str, Callable[[str], bool]]:
    """Label name → what it may hold, from the definitions in crmstream/metrics.py (and
    Faust's sensors): event topics, types, outcomes, partitions, rules, segments…"""
    topics = TopicNames.from_settings(settings.topics)
    ours = set(topics.all)
    app = settings.worker.app_id
    partitions = max(settings.topics.event_partitions, settings.topics.output_partitions)

    def ids_in(folder: Path) -> set[str]:
        return {yaml.safe_load(path.read_text())["id"] for path in folder.glob("*.yaml")}

    def one_of(values: set[str]) -> Callable[[str], bool]:
        return values.__contains__

    def a_topic(value: str) -> bool:
        # Faust names the topics it sends to "topic.<name>"; its own start with the app id.
        name = value.removeprefix("topic.")
        return name in ours or name.startswith(f"{app}-")

    return {
        "topic": a_topic,
        "partition": one_of({str(n) for n in range(partitions)}),
        "type": one_of({*STREAM_OF_TYPE, "unknown"}),
        "outcome": one_of(
            {"processed", "duplicate", "invalid", *OUTCOME_LABEL.values(), *JOURNEY_OUTCOMES}
        ),
        "journey": one_of(ids_in(journeys_folder(settings.triggers))),
        "reason": one_of({reason.value for reason in Reason} | {"missing", "invalid"}),
        "stage": one_of(REDIS_STAGES),
        "rule": one_of(ids_in(rules_folder(settings.triggers))),
        "channel": one_of({*get_args(Channel), "none"}),
        "outbox": one_of({"triggers", "segments"}),
        "segment": one_of(ids_in(segments_folder(settings.segments))),
        "result": one_of({"ok", "failed"}),
        "decided": one_of({"on_arrival", "in_order"}),
        "le": lambda value: value == "+Inf" or re.fullmatch(r"\d+(\.\d+)?", value) is not None,
        "version": lambda value: re.fullmatch(r"[\w.+-]+", value) is not None,
        "python": lambda value: re.fullmatch(r"\d+\.\d+\.\d+\w*", value) is not None,
        # Faust's sensors: its agents' streams, its tables and its own counters.
        "stream": lambda value: re.fullmatch(r"stream\.[\w.:-]+\.events", value) is not None,
        "table": lambda value: value.startswith(f"{app}-") or value.isidentifier(),
        "operation": lambda value: value.isidentifier(),
        "metric": lambda value: value.isidentifier(),
        "status_code": lambda value: re.fullmatch(r"[1-5]\d\d", value) is not None,
    }


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- loopback
        return str(response.read().decode())


def sample_value(page: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def refused_calls(base: str, events: list[dict[str, Any]]) -> None:
    """A missing and a wrong token, on a real customer's address: refused and counted."""
    first = events[0]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        url = f"{base}/profiles/{first['shop']}/{first.get('subject', 'x')}/"
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 -- loopback
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 -- loopback
        refused.value.close()
        assert refused.value.code == 401


def test_every_label_is_bounded_and_no_customer_is_in_one(
    settings: Settings, tmp_path: Path
) -> None:
    config = ending_at(SimulationConfig(seed=77), EVENTS, datetime.now(UTC))
    events = list(Simulator(config).events(EVENTS))
    create_topics(settings)
    publish(settings, events + events[:20])  # twenty delivered twice: duplicates
    topics = TopicNames.from_settings(settings.topics)
    # Two dead letters, keyed by a real customer: one names its shop, one is not JSON.
    key = f"{events[0]['shop']}:{events[0].get('subject', 'nobody')}".encode()
    half = orjson.dumps({"type": "cart.item_added", "shop": events[0]["shop"]})
    produce(settings, topics.event("cart"), [(key, half), (key, b"not json")])

    base = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    with running_worker(settings, tmp_path / "worker.log"):
        deadline = time.monotonic() + 180
        while True:
            try:
                page = scrape(f"{base}/metrics")
            except (urllib.error.URLError, ConnectionError):
                page = ""
            consumed = sample_value(page, "crmstream_events_consumed_total")
            relayed = sample_value(page, "crmstream_relayed_total", outbox="triggers")
            if consumed >= EVENTS + 22 and relayed > 0:
                break
            assert time.monotonic() < deadline, f"consumed {consumed}, relayed {relayed}"
            time.sleep(0.5)
        refused_calls(base, events)
        page = scrape(f"{base}/metrics")

    fired = consume(settings, [topics.triggers], 10**6, 10)
    triggers = [orjson.loads(value_bytes(message)) for message in fired]
    assert triggers, "the run fired no trigger to look for"
    assert sample_value(page, "crmstream_dead_letters_total") == 2
    assert sample_value(page, "crmstream_events_consumed_total", outcome="duplicate") >= 20
    assert sample_value(page, "crmstream_http_auth_failures_total") == 2

    allowed = allowed_values(settings)
    unbounded: list[str] = []
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            assert sample.name.startswith("crmstream_"), sample.name
            unbounded += [
                f"{sample.name}{{{label}={value!r}}}"
                for label, value in sample.labels.items()
                if label not in allowed or not allowed[label](value)
            ]
    assert unbounded == []

    # Nothing that names a shop, a customer, an event or a trigger, anywhere on the page.
    names = {t["id"] for t in triggers}
    for event in events:
        names |= {event["id"], event["shop"], event.get("subject"), event.get("anonymousid")}
    names.discard(None)
    assert set(SHOPS) <= names
    assert sorted(name for name in names if name in page) == []
