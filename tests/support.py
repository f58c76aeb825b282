"""Helpers every test may use: isolated settings, real Kafka produce/consume, a worker
process, and the one way to wait for something."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from crmstream.admin import delete_topics, list_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from devstack import StackSettings
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from streams.cli.child_worker import settings_env, start_worker, stop_worker

Seen = TypeVar("Seen")


class WaitError(AssertionError):
    """What a test waited for did not come about in time."""

    def __init__(self, what: str, timeout_s: float, seen: object) -> None:
        super().__init__(f"never {what} within {timeout_s:g}s; last seen: {seen!r}")
        self.seen = seen


def eventually(
    check: Callable[[], Seen],
    timeout_s: float,
    what: str,
    *,
    until: Callable[[Seen], object] = bool,
    every_s: float = 0.2,
) -> Seen:
    """Call ``check`` until ``until`` holds for what it returns (by default: until it is
    true), and return that value. Past ``timeout_s`` it raises WaitError with ``what``
    and the last value seen: a wait that runs out can never pass for one that was met."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = check()
        if until(seen):
            return seen
        if time.monotonic() >= deadline:
            raise WaitError(what, timeout_s, seen)
        time.sleep(every_s)


async def eventually_async(
    check: Callable[[], Awaitable[Seen]],
    timeout_s: float,
    what: str,
    *,
    until: Callable[[Seen], object] = bool,
    every_s: float = 0.2,
) -> Seen:
    """``eventually`` for a check that awaits (an async Redis client, say)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await check()
        if until(seen):
            return seen
        if time.monotonic() >= deadline:
            raise WaitError(what, timeout_s, seen)
        await asyncio.sleep(every_s)


def chosen_seed(variable: str, default: int | None = None) -> int:
    """The seed of a test's random choices: ``variable`` from the environment to replay a
    run, else ``default``, else one from the clock so that runs differ. Printed either
    way, as the assignment that replays it (pytest shows it with a failure)."""
    seed = int(os.environ.get(variable, time.time_ns() % 2**32 if default is None else default))
    print(f"{variable}={seed}")  # noqa: T201 -- a failure is replayed from it
    return seed


def isolated(base: Settings, namespace: str) -> Settings:
    """Settings whose topics, Redis keys, consumer group and web port belong to one test."""
    return base.model_copy(
        update={
            "topics": base.topics.model_copy(update={"prefix": f"test.{namespace}"}),
            "redis": base.redis.model_copy(update={"key_prefix": f"test-{namespace}"}),
            "worker": base.worker.model_copy(
                update={"app_id": f"crmstream-{namespace}", "web_port": free_port()}
            ),
        }
    )


def stack_env(stack: StackSettings) -> dict[str, str]:
    """The CRMSTREAM_STACK_* variables that give a `crmstream stack` child ``stack``."""
    env: dict[str, str] = {}
    for name, value in stack:
        if value is not None:
            shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
            env[f"CRMSTREAM_STACK_{name.upper()}"] = shown
    return env


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def started_worker(settings: Settings, cwd: Path) -> tuple[int, str, float]:
    """Start a worker and wait for it to give up: exit status, its last line, seconds."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    lines = done.stderr.strip().splitlines()
    return done.returncode, lines[-1] if lines else "", time.monotonic() - began


def wipe(settings: Settings) -> None:
    """Remove a test's topics and Redis keys."""
    prefix = settings.topics.prefix + "."
    delete_topics(settings, [name for name in list_topics(settings) if name.startswith(prefix)])
    wipe_redis(settings)


def wipe_redis(settings: Settings) -> None:
    """Remove every Redis key of a test (its prefix), as a Redis that lost everything."""
    client = connect_sync(settings.redis)
    try:
        keys = list(client.scan_iter(match=Keys(settings.redis.key_prefix).pattern(), count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
    finally:
        client.close()


def produce(settings: Settings, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = Producer({**settings.kafka.librdkafka(), "linger.ms": 5, "enable.idempotence": True})
    failures: list[str] = []

    def on_delivery(error: object, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"
    assert not failures, failures[:5]
    return sent


def consume(
    settings: Settings, topics: list[str], count: int, timeout_s: float = 60.0
) -> list[Message]:
    """Read exactly ``count`` messages from the start of ``topics`` (fewer on timeout)."""
    consumer = Consumer(
        {
            **settings.kafka.librdkafka(),
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=min(1000, count - len(messages)), timeout=0.5)
            messages.extend(message for message in batch if message.error() is None)
        # Anything more than `count` within a short grace would be a duplicate.
        messages.extend(
            m for m in consumer.consume(num_messages=100, timeout=1.0) if m.error() is None
        )
    finally:
        consumer.close()
    return messages


def backlog_read(settings: Settings) -> bool:
    """The workers' group has committed every event partition up to its end."""
    names = TopicNames.from_settings(settings.topics).events
    probe = Consumer(
        {**settings.kafka.librdkafka(), "group.id": f"{settings.worker.app_id}.events"}
    )
    try:
        partitions = [
            TopicPartition(topic, n)
            for topic, count in list_topics(settings).items()
            if topic in names
            for n in range(count)
        ]
        committed = probe.committed(partitions, timeout=10)
        # A partition that never held a record has nothing to commit (offset -1001).
        return all(
            max(part.offset, 0) >= probe.get_watermark_offsets(part, timeout=10)[1]
            for part in committed
        )
    except KafkaException:
        return False
    finally:
        probe.close()


@contextmanager
def running_worker(
    settings: Settings, log: Path, loglevel: str = "warning"
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `crmstream worker` process with the test's settings; stopped with SIGTERM."""
    proc = start_worker(log, env=settings_env(settings), loglevel=loglevel)
    try:
        yield proc
    finally:
        stop_worker(proc)


def text(value: bytes | str | None) -> str:
    """Redis replies and Kafka headers as text, whatever the client's typing says they are."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def value_bytes(message: Message) -> bytes:
    value = message.value()
    assert isinstance(value, bytes)
    return value


def api_token(settings: Settings, shop: str, scope: str = "read") -> str:
    """A new API token for ``shop``, made with `crmstream tokens create`."""
    made = subprocess.run(
        [sys.executable, "-m", "streams.cli", "tokens", "create", shop, "--scope", scope],
        env={**os.environ, **settings_env(settings)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.strip()


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    """(status, JSON body) of a GET on loopback, with ``token`` as its bearer; (0, None)
    while nothing listens yet."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 -- loopback
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"null")
    except urllib.error.URLError:
        return 0, None


def require_tool(name: str, package: str) -> str:
    """The path of a program the test needs: a CI run fails without it, a local one skips."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found (Debian: apt-get install {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
