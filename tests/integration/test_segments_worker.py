"""Segments through a real worker: the membership oracle, and time alone making a customer
dormant, with every change on crm.segments."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from crmstream.admin import create_topics, list_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.pipeline import ProfilesAndTriggers
from handlers.redis_client import RedisClient
from storefront.simulator import SimulationConfig, Simulator
from streams.cli.child_worker import settings_env
from tests.integration.test_profiles import converge, publish
from tests.oracle.history import ms
from tests.oracle.segments import SEGMENTS, memberships
from tests.support import api_token, eventually, eventually_async, http_get, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def with_segments(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"segments": settings.segments.model_copy(update=changes)})


def simulated(count: int, seed: int, start: datetime) -> list[dict[str, Any]]:
    """Seeded shopping over the last months, and a merchant tagging a few customers."""
    events = list(Simulator(SimulationConfig(seed=seed, start=start)).events(count))
    rng = random.Random(seed)
    registered = [e for e in events if e["type"] == "customer.registered"]
    for n, event in enumerate(rng.sample(registered, 40)):
        tags = ["vip-list"] if n % 4 else []  # a few added, then taken off again below
        events.append(_tagged(event, tags, n, seconds=60))
        if n % 8 == 1:
            events.append(_tagged(event, [], n + 1000, seconds=120))
    return events


def _tagged(registered: dict[str, Any], tags: list[str], n: int, seconds: int) -> dict[str, Any]:
    at = datetime.fromisoformat(registered["time"]) + timedelta(seconds=seconds)
    return {
        "specversion": "1.0", "id": f"tag-{n}", "source": "merchant", "type": "customer.updated",
        "time": at.isoformat(), "shop": registered["shop"], "subject": registered["subject"],
        "data": {"tags": tags},
    }  # fmt: skip


async def drained(client: RedisClient, keys: Keys, timeout_s: float = 60) -> None:
    """Wait until the relay has taken every change out of the segment outboxes."""

    async def waiting() -> dict[str, int]:
        lengths = {
            base: await client.xlen(keys.segment_outbox(base)) for base in keys.trigger_shards()
        }
        return {base: length for base, length in lengths.items() if length}

    await eventually_async(
        waiting, timeout_s, "every segment change relayed", until=lambda left: not left,
        every_s=0.5,
    )  # fmt: skip


def _end_of(consumer: Consumer, partition: TopicPartition) -> int:
    """The partition's end offset; the broker may say for a moment that it is not the
    leader (a partition's leadership settling after the topic was made): asked again."""

    def end() -> int | None:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            error = exc.args[0]
            # librdkafka does not mark "not leader" retriable in a watermark query.
            if not error.retriable() and error.code() != KafkaError.NOT_LEADER_FOR_PARTITION:
                raise
            return None

    found = eventually(
        end, 30, f"the end of {partition.topic}[{partition.partition}]",
        until=lambda offset: offset is not None,
    )  # fmt: skip
    assert found is not None
    return found


def read_all(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every message on ``topic`` up to its end as it stands now (no quiet period: what
    a drained outbox relayed is all there)."""
    consumer = Consumer({**settings.kafka.librdkafka(), "group.id": f"reader-{time.time_ns()}"})
    partitions = [TopicPartition(topic, n) for n in range(list_topics(settings)[topic])]
    ends = {tp.partition: _end_of(consumer, tp) for tp in partitions}
    consumer.assign([TopicPartition(topic, n, OFFSET_BEGINNING) for n in ends])
    read_to = dict.fromkeys(ends, 0)
    found: list[dict[str, Any]] = []

    def behind() -> dict[int, int]:
        for message in consumer.consume(num_messages=1000, timeout=0.5):
            partition, offset = message.partition(), message.offset()
            if message.error() is None and partition is not None and offset is not None:
                found.append(orjson.loads(message.value() or b"null"))
                read_to[partition] = offset + 1
        return {n: end - read_to[n] for n, end in ends.items() if read_to[n] < end}

    try:
        eventually(behind, 60, f"{topic} read to its end", until=lambda left: not left, every_s=0)
    finally:
        consumer.close()
    return found


def replayed(changes: list[dict[str, Any]]) -> dict[str, set[tuple[str, str]]]:
    """Memberships from the changes alone: the last transition of each customer wins."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for change in changes:
        key = (change["data"]["segment"], change["shop"], change["subject"])
        if key not in latest or change["data"]["transition"] > latest[key]["data"]["transition"]:
            latest[key] = change
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for (segment, shop, who), change in latest.items():
        if change["type"] == "segment.entered":
            members[segment].add((shop, who))
    return members


async def test_memberships_equal_the_reference_and_the_changes_replay_to_them(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_segments(settings, recheck_every_s=3600)
    start = datetime.now(UTC) - timedelta(days=120)
    events = simulated(20_000, seed=2027, start=start)
    create_topics(settings)
    publish(settings, events)
    sink = ProfilesAndTriggers.from_settings(settings)
    reader, keys, client = sink.triggers.reader, sink.keys, sink.profiles.client
    try:
        with running_worker(settings, tmp_path / "worker.log") as worker:
            await converge(reader, events, worker, tmp_path / "worker.log")
            # Time has moved since the events: the timed segments are brought to one moment.
            as_of = int(time.time() * 1000)
            await sink.segments.recheck(as_of)
            await drained(client, keys)
            changes = read_all(settings, TopicNames.from_settings(settings.topics).segments)
        expected = memberships(events, as_of)
        assert max(ms(e["time"]) for e in events) < as_of
        shops = {event["shop"] for event in events}
        for segment in SEGMENTS:
            actual: set[tuple[str, str]] = set()
            for shop in shops:
                cursor = None
                while True:
                    page = await sink.segment_reader.members(shop, segment, cursor, limit=500)
                    actual |= {(shop, who) for who in page.members}
                    cursor = page.cursor
                    if cursor is None:
                        break
            assert actual == expected[segment], segment
            sizes = sum([(await sink.segment_reader.sizes(shop)).get(segment, 0) for shop in shops])
            assert sizes == len(expected[segment]), segment
        assert sum(map(len, expected.values())) > 100  # the file exercises the segments
        assert all(expected[s] for s in ("vip-list", "north-region", "favorited-never-bought"))
        from_changes = replayed(changes)
        for segment in SEGMENTS:
            assert from_changes[segment] == expected[segment], segment
        assert len({change["id"] for change in changes}) == len(changes)
    finally:
        await sink.close()


def test_time_alone_makes_a_buyer_dormant(settings: Settings, tmp_path: Path) -> None:
    """No event after the order: only time passes, and the customer enters "dormant"."""
    settings = with_segments(settings, recheck_every_s=1.0)
    now = datetime.now(UTC)
    # Days since the order: 90 when the worker sees it (at risk), 91 (dormant) 15 s later.
    order_at = now - timedelta(days=91) + timedelta(seconds=15)
    line = {"item_id": "oolong", "category": "tea", "qty": 1, "price": "88.00"}

    def event(kind: str, at: datetime, data: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            "specversion": "1.0", "id": f"d-{n}", "source": "test", "type": kind,
            "time": at.isoformat(), "shop": "tea-house", "subject": "c-7", "data": data,
        }  # fmt: skip

    create_topics(settings)
    publish(
        settings,
        [
            event("customer.registered", order_at - timedelta(hours=1), {}, 1),
            event("order.placed", order_at, {"order_id": "o-1", "items": [line], "total": "88"}, 2),
        ],
    )
    topic = TopicNames.from_settings(settings.topics).segments
    with running_worker(settings, tmp_path / "worker.log"):
        dormant = eventually(
            lambda: [c for c in read_all(settings, topic) if c["data"]["segment"] == "dormant"],
            90, "the customer entering dormant by time alone", every_s=1,
        )  # fmt: skip
    assert [(c["type"], c["data"]["caused_by"]) for c in dormant] == [
        ("segment.entered", "recheck")
    ], (tmp_path / "worker.log").read_text()[-3000:]
    entered_at = datetime.fromisoformat(dormant[0]["time"])
    assert entered_at >= order_at + timedelta(days=91)


SHOP_ROUTES = (
    "/profiles/tea-house/m-03",
    "/segments/tea-house",
    "/segments/tea-house/vip-list/members",
    "/rules/stats?shop=tea-house",
    "/customers/tea-house/m-03/decisions",
    "/customers/tea-house/m-03/export",
)
HOSTILE_PATHS = {
    "/profiles/..%2F..%2Fetc%2Fpasswd/m-03": 400,
    "/profiles/../m-03": 400,
    "/profiles/%2A/m-03": 400,
    "/profiles/tea-house/m-03%7D": 404,  # the router places no brace in a segment
    "/profiles/tea-house%0A/m-03": 400,
    "/profiles/" + "x" * 65 + "/m-03": 400,
    "/segments/%7Bt1%7D/": 404,
    "/profiles/tea-house/m%2A03": 400,
    "/segments/tea-house%2F..%2Fdefault/": 400,
    "/segments/..%5C..%5Cdefault/vip-list/members/": 400,
    "/rules/stats/?shop=%2A": 400,
    "/profiles/a..b/m-03": 404,  # a valid name: simply no such customer
}


def http_get_text(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- loopback
        return int(response.status), response.read().decode()


def status_of(url: str, token: str) -> int:
    """The status of a GET; a 400 whose JSON body does not say why counts as a 500."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 -- loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        if error.code == 400 and "not a" not in orjson.loads(error.read())["error"]:
            return 500
        return error.code


def test_sizes_members_and_a_profile_s_segments_over_http_and_the_cli(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    names = [f"m-{n:02d}" for n in range(25)]
    events = [
        {
            "specversion": "1.0",
            "id": f"h-{who}",
            "source": "test",
            "type": "customer.updated",
            "time": now.isoformat(),
            "shop": "tea-house",
            "subject": who,
            "data": {"tags": ["vip-list"], "region": "华北"},
        }
        for who in names
    ]
    create_topics(settings)
    publish(settings, events)
    base = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    token = api_token(settings, "tea-house")
    with running_worker(settings, tmp_path / "worker.log"):

        def sizes_shown() -> dict[str, Any]:
            status, body = http_get(f"{base}/segments/tea-house/", token)
            return body["segments"] if status == 200 else {}

        sizes = eventually(
            sizes_shown, 60, f"the {len(names)} tagged customers in vip-list",
            until=lambda shown: shown.get("vip-list") == len(names), every_s=0.5,
        )  # fmt: skip
        assert sizes["vip-list"] == sizes["north-region"] == len(names)
        _, first = http_get(f"{base}/segments/tea-house/vip-list/members/?limit=10", token)
        _, second = http_get(
            f"{base}/segments/tea-house/vip-list/members/?limit=20&cursor=m-09", token
        )
        bad, _ = http_get(f"{base}/segments/tea-house/vip-list/members/?limit=0", token)
        _, profile = http_get(f"{base}/profiles/tea-house/m-03/", token)
        # Every route answers with and without its trailing slash.
        for path in (
            "/profiles/tea-house/m-03",
            "/segments/tea-house",
            "/rules/stats",
            "/segments/tea-house/vip-list/members?limit=10",
            "/customers/tea-house/m-03/decisions",
            "/healthz/",
            "/readyz/",
        ):
            assert http_get(base + path, token)[0] == 200, path
        bare = http_get(f"{base}/profiles/tea-house/m-03", token)[1]
        assert {**bare, "as_of": None} == {**profile, "as_of": None}
        assert http_get(f"{base}/profiles/tea-house/nobody", token)[0] == 404
        # The right to know takes an admin token; a read token is refused, saying why.
        assert http_get(f"{base}/customers/tea-house/m-03/export", token)[0] == 403
        admin = api_token(settings, "tea-house", "admin")
        status, exported = http_get(f"{base}/customers/tea-house/m-03/export", admin)
        assert status == 200
        assert exported["segments"] == ["north-region", "vip-list"]
        assert exported["facts"]["tags"] == ["vip-list"]
        assert http_get(f"{base}/customers/tea-house/nobody/export", admin)[0] == 404
        hostile = {path: status_of(base + path, token) for path in HOSTILE_PATHS}
        # A token answers for its own shop alone; none, a forged or a revoked one for none.
        other = api_token(settings, "wine-cellar")
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        seen = {
            (who, route): http_get(base + route, credential)[0]
            for route in SHOP_ROUTES
            for who, credential in (("other", other), ("none", None), ("forged", forged))
        }
        token_id = token.split("_")[1]
        subprocess.run(
            [sys.executable, "-m", "streams.cli", "tokens", "revoke", token_id],
            env={**os.environ, **settings_env(settings)}, check=True, capture_output=True,
        )  # fmt: skip
        revoked = {route: http_get(base + route, token)[0] for route in SHOP_ROUTES}
        _, exposition = http_get_text(f"{base}/metrics")
    assert seen == {
        (who, route): 404 if who == "other" else 401
        for route in SHOP_ROUTES
        for who in ("other", "none", "forged")
    }, seen
    assert set(revoked.values()) == {401}, revoked
    refused = re.findall(r'crmstream_http_auth_failures_total\{reason="(\w+)"\} (\d+)', exposition)
    assert {reason: float(n) for reason, n in refused} == {
        "missing": len(SHOP_ROUTES),
        "invalid": 2 * len(SHOP_ROUTES),
    }
    # A name outside the contract's pattern is refused with its reason before it reaches a
    # key, a file or a cache; a path the router cannot place is a 404; never a 500.
    assert hostile == HOSTILE_PATHS, hostile
    assert first == {
        "shop": "tea-house", "segment": "vip-list", "members": names[:10], "cursor": "m-09"
    }  # fmt: skip
    assert second["members"] == names[10:]
    assert second["cursor"] is None
    assert bad == 400
    assert profile["segments"] == ["north-region", "vip-list"]
    shown = subprocess.run(
        [sys.executable, "-m", "streams.cli", "segments", "tea-house"],
        env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert re.search(r"vip-list\s*│\s*25\b", shown.stdout), shown.stdout
