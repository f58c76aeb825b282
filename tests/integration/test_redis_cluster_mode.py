"""One Redis or a cluster: a worker pointed at the wrong kind, or at one without the
replicas it is told to wait for, says so in one line at start; and the cluster path
spreads a batch over every primary, one Function call per slot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import RedisDsn

from crmstream.errors import RedisUnavailableError
from crmstream.settings import Settings
from devstack import Stack, StackSettings
from devstack.cluster import LocalCluster
from handlers.functions.contract import Call
from handlers.functions.library import queue_function
from handlers.redis_client import Arg, connect, slot_groups
from streams.preflight import check_redis
from tests.faults.services import own_cluster
from tests.support import started_worker

pytestmark = pytest.mark.single_redis  # it brings up both kinds itself


@pytest.fixture
def cluster_url(settings: Settings, stack_settings: StackSettings) -> str:
    Stack(settings, stack_settings, redis_cluster=True).up()
    return LocalCluster(stack_settings).url


def test_a_cluster_setting_on_one_redis_is_refused_in_one_line(settings: Settings) -> None:
    plain = settings.redis.model_copy(update={"cluster": True})
    with pytest.raises(RedisUnavailableError, match="is not a Redis Cluster node"):
        check_redis(settings.model_copy(update={"redis": plain}))


def test_a_cluster_node_without_the_setting_is_refused_in_one_line(
    settings: Settings, cluster_url: str
) -> None:
    node = settings.redis.model_copy(update={"url": RedisDsn(cluster_url), "cluster": False})
    with pytest.raises(RedisUnavailableError, match="set CRMSTREAM_REDIS_CLUSTER=true"):
        check_redis(settings.model_copy(update={"redis": node}))


@dataclass(frozen=True, slots=True)
class Probe(Call):
    """A call of a Function no library registers: where it lands is what is probed."""

    FUNCTION: ClassVar[str] = "crm_probe_missing"
    LUA: ClassVar[str] = "probe"

    keys: tuple[str, ...]  # a run of keys of one slot, each its own KEYS entry

    def encode(self) -> tuple[list[str], list[Arg]]:
        return list(self.keys), []


async def test_function_calls_go_one_per_slot_to_the_node_serving_it(
    settings: Settings, cluster_url: str
) -> None:
    redis_settings = settings.redis.model_copy(
        update={"url": RedisDsn(cluster_url), "cluster": True}
    )
    client = connect(redis_settings)
    keys = [f"{settings.redis.key_prefix}:{{s:{n}}}:k" for n in range(300)]
    groups = slot_groups(client, keys)
    assert sorted(index for group in groups for index in group) == list(range(300))
    try:
        pipe = client.pipeline(transaction=False)
        for group in groups:
            queue_function(pipe, Probe.FUNCTION, Probe(tuple(keys[index] for index in group)))
        replies = await pipe.execute(raise_on_error=False)
        # Each call reached a node that serves its slot: Redis answers that the Function
        # is unknown, not that the keys are elsewhere (MOVED) or span slots (CROSSSLOT).
        assert {str(reply).split(" ")[0] for reply in replies} == {"Function"}, replies[:3]
    finally:
        for key in keys:
            await client.delete(key)
        await client.aclose()


def test_a_worker_on_a_cluster_without_replicas_exits_in_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    """By default a worker on a cluster waits for one replica per write (failover loses
    nothing); a cluster with none would stall it for ever, so it is refused at start."""
    with own_cluster(settings, tmp_path / "cluster", replicas_per_primary=0) as cluster:
        mine = cluster.settings
        assert mine.redis.wait_replicas is None
        status, last_line, seconds = started_worker(mine, tmp_path)
        assert status == 1, last_line
        assert last_line.startswith("error: "), last_line
        assert "the cluster's primaries have no replicas" in last_line
        assert "set CRMSTREAM_REDIS_WAIT_REPLICAS=0 to run without" in last_line
        assert seconds < 30
        # Told not to wait, the same cluster is taken as it is.
        no_wait = mine.redis.model_copy(update={"wait_replicas": 0})
        check_redis(mine.model_copy(update={"redis": no_wait}))


def test_one_redis_told_to_wait_for_a_replica_it_lacks_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    waits = settings.redis.model_copy(update={"wait_replicas": 1})
    status, last_line, seconds = started_worker(
        settings.model_copy(update={"redis": waits}), tmp_path
    )
    assert status == 1, last_line
    assert "has 0 replica(s), and CRMSTREAM_REDIS_WAIT_REPLICAS waits for 1" in last_line
    assert seconds < 30


def test_the_stack_cluster_with_its_replicas_passes(settings: Settings, cluster_url: str) -> None:
    on_cluster = settings.redis.model_copy(update={"url": RedisDsn(cluster_url), "cluster": True})
    check_redis(settings.model_copy(update={"redis": on_cluster}))
