"""Before a worker starts: do Kafka and Redis accept the credentials it was given, and
does Redis have the replicas the worker is told to wait for?

A wrong password, a certificate not signed by the configured CA, or a Redis without the
replicas that CRMSTREAM_REDIS_WAIT_REPLICAS asks for gives one line that says which,
within seconds, instead of clients that retry in the background for ever (a batch's
offsets wait for its replicas: with none, nothing would ever be taken in).
A service that does not answer yet is not an error here: the worker waits for Redis
(its readiness says so), and `topics create` reports a broker that never answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from typing import Any, Final

import redis
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from crmstream.errors import KafkaError, RedisUnavailableError
from crmstream.settings import Settings
from handlers.redis_client import SyncRedisClient, connect_sync

log = logging.getLogger("crmstream.worker")

_WAIT_REPLICAS: Final = "CRMSTREAM_REDIS_WAIT_REPLICAS"
# A replica that restarts with its primary takes a moment to reconnect: that is not yet a
# Redis without replicas.
_REPLICAS_GRACE_S: Final = 5.0
# librdkafka error codes that retrying will not cure.
_REFUSED: Final = frozenset(
    {RdKafkaError._AUTHENTICATION, RdKafkaError._SSL, RdKafkaError.SASL_AUTHENTICATION_FAILED}
)


def check_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    kafka = settings.kafka
    where = f"Kafka at {kafka.bootstrap} ({kafka.security_protocol})"
    refused: list[RdKafkaError] = []

    def on_error(error: RdKafkaError) -> None:
        if error.code() in _REFUSED or "certificate verify failed" in error.str():
            refused.append(error)

    conf = {**kafka.librdkafka(), "error_cb": on_error, "log_level": 0}
    client = AdminClient(conf)  # type: ignore[arg-type]  # error_cb takes a callable
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_topics(timeout=1.0)
        except KafkaException as exc:
            client.poll(0.2)  # the client's errors reach error_cb only while it is polled
            if refused:
                raise KafkaError(f"{where} refused us: {_one_line(refused[-1].str())}") from None
            if time.monotonic() > deadline:
                log.warning("%s did not answer yet: %s", where, exc.args[0].str())
                return
        else:
            return


def check_redis(settings: Settings) -> None:
    where = f"Redis at {settings.redis.url}"
    try:
        client = connect_sync(settings.redis)  # a cluster client asks for the slot map at once
    except redis.RedisClusterException as exc:
        if "not enabled" in str(exc):
            raise RedisUnavailableError(
                f"{where} is not a Redis Cluster node; unset CRMSTREAM_REDIS_CLUSTER "
                "to use it as one Redis"
            ) from None
        log.warning("%s did not answer yet: %s", where, _one_line(str(exc)))
        return
    try:
        client.ping()
        if not settings.redis.cluster and _cluster_enabled(client):
            raise RedisUnavailableError(
                f"{where} is a Redis Cluster node: set CRMSTREAM_REDIS_CLUSTER=true"
            )
        _check_replicas(client, settings, where)
    except redis.AuthenticationError as exc:
        raise RedisUnavailableError(f"{where} refused the credentials: {exc}") from None
    except redis.ResponseError as exc:  # WRONGPASS, NOPERM, NOAUTH
        raise RedisUnavailableError(f"{where} refused us: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            raise RedisUnavailableError(f"{where}: {_one_line(str(exc))}") from None
        log.warning("%s did not answer yet: %s", where, _one_line(str(exc)))
    finally:
        client.close()


def _check_replicas(client: SyncRedisClient, settings: Settings, where: str) -> None:
    wanted = settings.redis.replicas_to_wait_for
    if wanted == 0:
        return
    deadline = time.monotonic() + _REPLICAS_GRACE_S
    while (short := _primaries_short_of(client, wanted)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not short:
        return
    remedy = f"add them, or set {_WAIT_REPLICAS}=0 to run without"
    if not isinstance(client, redis.RedisCluster):
        raise RedisUnavailableError(
            f"{where} has {short['']} replica(s), and {_WAIT_REPLICAS} waits for {wanted}; "
            + remedy
        )
    which = ", ".join(short)
    if not any(short.values()):
        raise RedisUnavailableError(
            f"{where}: the cluster's primaries have no replicas ({which}); " + remedy
        )
    raise RedisUnavailableError(
        f"{where}: the cluster's primaries {which} have fewer than the {wanted} replicas "
        f"that {_WAIT_REPLICAS} waits for; " + remedy
    )


def _primaries_short_of(client: SyncRedisClient, wanted: int) -> dict[str, int]:
    """The primaries (by address; one Redis is "") with fewer than ``wanted`` replicas,
    and how many they have. A cluster's replicas count while they are away too (CLUSTER
    NODES still lists them): the worker holds batches back until they return, as it
    would for any short outage."""
    if not isinstance(client, redis.RedisCluster):
        info = client.info("replication")
        count = int(info.get("connected_slaves", 0)) if isinstance(info, dict) else 0
        return {} if count >= wanted else {"": count}
    nodes: dict[str, dict[str, Any]] = client.cluster_nodes()
    replicas: Counter[str] = Counter(
        node["master_id"] for node in nodes.values() if "slave" in node["flags"].split(",")
    )
    return {
        address: replicas[node["node_id"]]
        for address, node in sorted(nodes.items())
        if "master" in node["flags"].split(",")
        and node["slots"]
        and replicas[node["node_id"]] < wanted
    }


def _cluster_enabled(client: SyncRedisClient) -> bool:
    info = client.info("cluster")
    return bool(isinstance(info, dict) and info.get("cluster_enabled"))


def check_services(settings: Settings) -> None:
    check_redis(settings)
    check_kafka(settings)


def _one_line(text: str) -> str:
    """librdkafka's text without the broker prefix and the state suffix: the reason."""
    text = re.sub(r"^\S+://\S+: ", "", text)
    text = re.sub(r" \(after \d+ms in state \w+\)$", "", text)
    return " ".join(text.split())
