"""`crmstream stack` on its own ports and state folder, beside the suite's shared stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.cimpl import NewTopic
from pydantic import RedisDsn

from crmstream.admin import create_topics
from crmstream.connections import KafkaSettings, RedisSettings
from crmstream.settings import Settings
from devstack import ServiceState, Stack, StackSettings
from devstack.cluster import NODES, PRIMARIES, LocalCluster
from devstack.kafka import KafkaBroker, new_cluster_id
from devstack.redis import RedisServer
from handlers.redis_client import connect_sync
from streams.cli.child_worker import settings_env
from tests.own_services import free_port_run
from tests.support import eventually, free_port, stack_env

pytestmark = pytest.mark.single_redis


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _sigkill(pid: int | None, program: str) -> None:
    """SIGKILL ``pid`` and wait until no ``program`` process has it any more."""
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    eventually(
        lambda: _processes_mentioning(program), 10, f"{program} pid {pid} gone",
        until=lambda pids: pid not in pids, every_s=0.1,
    )  # fmt: skip


def _appended(home: Path, needle: bytes) -> list[str]:
    """The append-only files under a Redis's ``home`` that hold ``needle``: once written
    there, the page cache keeps it through a SIGKILL of the server."""
    return [aof.name for aof in home.rglob("*.aof") if needle in aof.read_bytes()]


@pytest.fixture
def own_stack_settings(
    base_settings: Settings, stack_settings: StackSettings, tmp_path: Path
) -> tuple[Settings, StackSettings]:
    addresses = base_settings.model_copy(
        update={
            "kafka": KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"),
            "redis": RedisSettings(url=RedisDsn(f"redis://127.0.0.1:{free_port()}/0")),
        }
    )
    own = StackSettings(
        state_dir=tmp_path / "state",
        cache_dir=stack_settings.cache_dir,  # the jars are shared, not fetched again
        kafka_controller_port=free_port(),
    )
    return addresses, own


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_up_is_idempotent_recovers_from_a_killed_broker_and_down_cleans_up(
    own_stack_settings: tuple[Settings, StackSettings], stack: object
) -> None:
    settings, own = own_stack_settings
    local = Stack(settings, own)
    try:
        first = {s.name: s for s in local.up()}
        assert {s.state for s in first.values()} == {ServiceState.STARTED}

        again = {s.name: s for s in local.up()}
        assert {s.state for s in again.values()} == {ServiceState.RUNNING}
        assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in first.items()}

        broker_pid = first["kafka"].pid
        _sigkill(broker_pid, "kafka.Kafka")
        assert {s.name: s.state for s in local.status()}["kafka"] is ServiceState.STOPPED

        recovered = {s.name: s for s in local.up()}
        assert recovered["kafka"].state is ServiceState.STARTED
        assert recovered["kafka"].pid != broker_pid
        assert recovered["redis"].state is ServiceState.RUNNING
        outcome = create_topics(settings, [NewTopic("after-recovery", 1, 1)])
        assert outcome[0].created

        # Durable by default: Redis SIGKILLed keeps what reached its append-only file.
        client = connect_sync(settings.redis)
        client.set("kept", "durable-by-default")
        client.close()
        eventually(
            lambda: _appended(RedisServer(settings, own).home, b"durable-by-default"), 10,
            "the write in the append-only file",
        )  # fmt: skip
        _sigkill(recovered["redis"].pid, "redis-server")
        assert {s.name: s for s in local.up()}["redis"].state is ServiceState.STARTED
        client = connect_sync(settings.redis)
        assert client.get("kept") == b"durable-by-default"
        client.close()
    finally:
        stopped = local.down()

    assert {s.state for s in stopped} == {ServiceState.STOPPED}
    assert _processes_mentioning(str(own.state_dir)) == []


def test_up_uses_services_that_already_answer(
    base_settings: Settings, tmp_path: Path, stack: object
) -> None:
    """The suite's stack answers at the default addresses: a second state folder starts nothing."""
    other = StackSettings(state_dir=tmp_path / "other", cache_dir=tmp_path / "c")
    statuses = Stack(base_settings, other).up()
    assert {s.state for s in statuses} == {ServiceState.EXTERNAL}
    # ...and stops nothing either.
    assert {s.state for s in Stack(base_settings, other).down()} == {ServiceState.EXTERNAL}


def test_missing_program_is_one_clear_line(
    own_stack_settings: tuple[Settings, StackSettings],
) -> None:
    settings, own = own_stack_settings
    env = {
        **os.environ,
        **settings_env(settings),
        **stack_env(own),
        "PATH": str(Path(sys.executable).parent),
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "stack", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: redis-server not found on PATH: install Redis 7 or newer "
        "(Debian: apt-get install redis-server)"
    ]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_redis_cluster_up_twice_reported_node_by_node_and_down(
    base_settings: Settings, stack_settings: StackSettings, tmp_path: Path, stack: object
) -> None:
    """`stack up --redis-cluster` on ports of its own: six nodes joined into one cluster;
    again, nothing new starts; `stack status` names every node; `down` stops them all."""
    own = StackSettings(
        state_dir=tmp_path / "state",
        cache_dir=stack_settings.cache_dir,
        redis_cluster_first_port=free_port_run(NODES),
    )
    first = {s.name: s.state for s in Stack(base_settings, own, redis_cluster=True).up()}
    nodes = [node.name for node in LocalCluster(own).nodes]
    assert [first[name] for name in nodes] == [ServiceState.STARTED] * NODES
    cluster = LocalCluster(own)
    assert cluster.formed()
    assert len({cluster.primary_for(f"{{{tag}}}") for tag in range(200)}) == PRIMARIES

    again = {s.name: s.state for s in Stack(base_settings, own, redis_cluster=True).up()}
    assert [again[name] for name in nodes] == [ServiceState.RUNNING] * NODES
    status = subprocess.run(
        [sys.executable, "-m", "streams.cli", "stack", "status"],
        env={**os.environ, **settings_env(base_settings), **stack_env(own)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for node in LocalCluster(own).nodes:
        assert f"{node.name:<14} {node.address:<21} running" in status.stdout, status.stdout

    down = {s.name: s.state for s in Stack(base_settings, own).down()}
    assert [down[name] for name in nodes] == [ServiceState.STOPPED] * NODES
    assert _processes_mentioning(str(own.state_dir)) == []


@pytest.mark.timeout(120)
def test_a_cluster_id_that_starts_with_a_dash_formats_storage(
    own_stack_settings: tuple[Settings, StackSettings], stack: object
) -> None:
    """One random id in 64 starts with "-"; the storage tool once took it for an option."""
    settings, own = own_stack_settings
    broker = KafkaBroker(settings, own)
    kept = "-" + new_cluster_id()[1:]
    (broker.home / "cluster.id").parent.mkdir(parents=True)
    (broker.home / "cluster.id").write_text(kept + "\n")
    broker.write_config()
    broker.format_storage(broker.libs())
    meta = (broker.home / "data" / "meta.properties").read_text()
    assert f"cluster.id={kept}" in meta
