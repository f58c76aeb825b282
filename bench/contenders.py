"""Everything a scenario times against crmstream, each draining the same pre-loaded topics.

- the ceilings: a confluent-kafka and an aiokafka consumer that only read and parse;
- crmstream: real worker processes with the scenario's sink;
- the naive baseline: a Faust agent with one Redis round trip per event (bench/naive.py);
- the peers: the naive agent's counters written with quixstreams and with bytewax,
  one Redis pipeline per batch, in a virtualenv of their own (bench/peers/).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer

from bench.cost import Cost, Snapshot, between, snapshot
from bench.harness import Workspace, drain
from crmstream.errors import BenchError
from handlers.keys import Keys
from streams.app import aiokafka_options
from streams.cli.child_worker import start_worker, stop_worker

_LIMIT_S = 1200.0


def ceiling_confluent(space: Workspace) -> float:
    consumer = Consumer(
        {
            **space.settings.kafka.librdkafka(),
            "group.id": f"ceiling-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(space.topics.events))
    seen, timed, started = 0, 0, 0.0
    deadline = time.monotonic() + _LIMIT_S
    try:
        while seen < space.loaded:
            if time.monotonic() > deadline:
                raise BenchError(f"the confluent-kafka ceiling read {seen:,} of {space.loaded:,}")
            messages = consumer.consume(num_messages=1000, timeout=1.0)
            for message in messages:
                if message.error() is None:
                    orjson.loads(message.value() or b"null")
                    seen += 1
            # The clock starts once the first fetch is in hand; what it brought is not timed.
            if seen and not started:
                started, timed = time.perf_counter(), seen
    finally:
        consumer.close()
    return (seen - timed) / (time.perf_counter() - started)


def ceiling_aiokafka(space: Workspace) -> float:
    """The same with aiokafka (Faust's client, and the worker's), in getmany batches."""

    async def read() -> float:
        consumer = AIOKafkaConsumer(
            *space.topics.events,
            **aiokafka_options(space.settings.kafka),
            group_id=f"ceiling-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        seen, timed, started = 0, 0, 0.0
        deadline = time.monotonic() + _LIMIT_S
        try:
            while seen < space.loaded:
                if time.monotonic() > deadline:
                    raise BenchError(f"the aiokafka ceiling read {seen:,} of {space.loaded:,}")
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batches.values():
                    for record in records:
                        orjson.loads(record.value)
                    seen += len(records)
                if seen and not started:
                    started, timed = time.perf_counter(), seen
        finally:
            await consumer.stop()
        return (seen - timed) / (time.perf_counter() - started)

    return asyncio.run(read())


@dataclass(frozen=True)
class WorkerRun:
    """One timed drain by crmstream workers, and what is left to look at afterwards."""

    rate: float
    keys: Keys
    cost: Cost


def crmstream(
    space: Workspace,
    sink: str | None,
    *,
    workers: int = 1,
    keys: Keys | None = None,
    settle: bool = False,
    keep: bool = False,
    extra_env: Mapping[str, str] | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
    stop: Callable[[subprocess.Popen[bytes]], None] = stop_worker,
    on_progress: Callable[[int, list[subprocess.Popen[bytes]]], None] | None = None,
    tree: Path | None = None,
) -> WorkerRun:
    """``workers`` crmstream workers in one group, in a fresh key space unless given ``keys``;
    ``settle``: until every decision is relayed too. The key space is removed afterwards
    unless ``keep``. ``wrap`` runs the worker under another program (a profiler), which
    ``stop`` then stops. ``tree``: the workers run another checkout's code (its own
    .venv), to compare two versions in one run."""
    keys = keys or space.key_space()
    env = space.worker_env(keys, sink, **(extra_env or {}))
    procs = []
    try:
        for n in range(workers):
            own = {
                **env,
                "CRMSTREAM_WORKER_WEB_PORT": str(int(env["CRMSTREAM_WORKER_WEB_PORT"]) + n),
            }
            procs.append(start(space.logs / f"{keys.prefix}-{n}.log", own, wrap, tree))
        group = f"{env['CRMSTREAM_WORKER_APP_ID']}.events"
        pids = [proc.pid for proc in procs]
        first: list[tuple[int, Snapshot]] = []  # events handled, and the cost so far

        def done() -> bool:
            return space.committed_all(group) and (not settle or space.settled(keys))

        def progress(seen: int) -> None:
            if seen and not first:
                first.append((seen, snapshot(space.client, pids)))
            if on_progress is not None:
                on_progress(seen, procs)

        rate = drain(
            lambda: space.taken(keys), space.loaded, procs, _LIMIT_S, done=done,
            on_progress=progress,
        )  # fmt: skip
        seen_first, at_first = first[0]
        cost = between(at_first, snapshot(space.client, pids), space.loaded - seen_first)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(
            space.settings.worker.data_dir / env["CRMSTREAM_WORKER_APP_ID"],
            ignore_errors=True,
        )
        if not keep:
            space.forget(keys.pattern())
    return WorkerRun(rate, keys, cost)


def start(
    log: Path,
    env: Mapping[str, str],
    wrap: Callable[[list[str]], list[str]] | None,
    tree: Path | None = None,
) -> subprocess.Popen[bytes]:
    if wrap is None and tree is None:
        return start_worker(log, env)
    python = str(tree / ".venv" / "bin" / "python") if tree is not None else sys.executable
    argv = [python, "-m", "streams.cli", "worker", "--loglevel", "warning"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        return subprocess.Popen(
            wrap(argv) if wrap is not None else argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=tree,
        )


def naive(space: Workspace) -> float:
    keys = space.key_space()
    env = {**os.environ, **space.worker_env(keys, "unused:unused")}
    argv = [sys.executable, "-m", "bench.naive", "worker", "--loglevel", "warning"]
    try:
        return _counting(space, argv, env, f"{keys.prefix}:naive:taken", "naive")
    finally:
        shutil.rmtree(
            space.settings.worker.data_dir / env["CRMSTREAM_WORKER_APP_ID"],
            ignore_errors=True,
        )
        space.forget(keys.pattern())


def peer(space: Workspace, name: str) -> float:
    """A peer's rate; BenchError if its virtualenv cannot be made on this machine."""
    from bench.peers import PeerUnavailableError, peer_command  # noqa: PLC0415 (installs on first use)

    keys = space.key_space()
    try:
        argv, env = peer_command(
            name,
            bootstrap=space.settings.kafka.bootstrap,
            topics=list(space.topics.events),
            redis_url=str(space.settings.redis.url),
            prefix=keys.prefix,
            group=f"{keys.prefix}-{name}",
        )
    except PeerUnavailableError as exc:
        raise BenchError(f"{name} is not available here: {exc}") from exc
    try:
        return _counting(space, argv, env, f"{keys.prefix}:peer:taken", name)
    finally:
        space.forget(keys.pattern())


def _counting(
    space: Workspace, argv: list[str], env: Mapping[str, str], counter: str, name: str
) -> float:
    """Rate of a process that counts the events it has handled in one Redis key."""
    with (space.logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
    try:
        return drain(lambda: int(space.client.get(counter) or 0), space.loaded, [proc], _LIMIT_S)
    finally:
        stop_worker(proc)
