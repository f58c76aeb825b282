"""Helpers every test may use: isolated settings, real Kafka produce/consume, a worker process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer
from pydantic import RedisDsn

from crmstream.admin import delete_topics, list_topics
from crmstream.settings import Settings, StackSettings
from devstack.redis import RedisServer
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from streams.cli.child_worker import settings_env, start_worker, stop_worker


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


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports whose Redis Cluster bus ports (+10000)
    are free as well.

    The search stays below the kernel's ephemeral range (32768 up, by default), where the
    local end of any outgoing connection may sit; and a port counts as free only if it can
    be bound, since a connect attempt says nothing of a port held by such a connection."""
    for first in range(20_000, 22_768 - count, count):
        ports = [*range(first, first + count), *range(first + 10_000, first + 10_000 + count)]
        if all(_bindable(port) for port in ports):
            return first
    raise AssertionError("no run of free ports for a Redis Cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


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


@contextmanager
def redis_of_its_own(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    """A Redis server of the test's own, to stop (SIGSTOP) and resume: the settings that
    use it, and its pid. Resumed and shut down at the end, whatever happened."""
    own = _with_own_redis(settings, tmp_path)
    server = RedisServer(own)
    pid = server.start()
    try:
        yield own, pid
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        server.process.stop()


def _with_own_redis(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "redis": settings.redis.model_copy(
                update={
                    "url": RedisDsn(f"redis://127.0.0.1:{free_port()}/0"),
                    "cluster": False,
                    "socket_timeout_s": 1.0,
                }
            ),
            "stack": StackSettings(state_dir=tmp_path / "redis", cache_dir=tmp_path / "cache"),
        }
    )


def require_tool(name: str, package: str) -> str:
    """The path of a program the test needs: a CI run fails without it, a local one skips."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found (Debian: apt-get install {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def redis_holding(settings: Settings, needles: Iterable[bytes]) -> dict[str, list[str]]:
    """Every key of a test (its prefix) whose name or value holds one of ``needles``:
    needle → the keys, values read whole, whatever the type."""
    wanted = list(needles)
    found: dict[str, list[str]] = {}
    client = connect_sync(settings.redis)
    try:
        pattern = Keys(settings.redis.key_prefix).pattern()
        for raw_key in client.scan_iter(match=pattern, count=1000):
            key = bytes(raw_key)
            blob = key + b"\0" + _value_bytes(client, key)
            for needle in wanted:
                if needle in blob:
                    found.setdefault(needle.decode(errors="replace"), []).append(text(key))
    finally:
        client.close()
    return found


def _value_bytes(client: Any, key: bytes) -> bytes:
    kind = text(client.type(key))
    parts: list[Any]
    if kind == "string":
        parts = [client.get(key) or b""]
    elif kind == "hash":
        parts = [item for pair in client.hgetall(key).items() for item in pair]
    elif kind == "set":
        parts = list(client.smembers(key))
    elif kind == "zset":
        parts = list(client.zrange(key, 0, -1))
    elif kind == "list":
        parts = list(client.lrange(key, 0, -1))
    elif kind == "stream":
        parts = [
            item for _id, fields in client.xrange(key) for pair in fields.items() for item in pair
        ]
    else:
        parts = []
    return b"\0".join(part if isinstance(part, bytes) else str(part).encode() for part in parts)
