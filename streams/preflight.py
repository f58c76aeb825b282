"""Before a worker starts: do Kafka and Redis accept the credentials it was given?

A wrong password or a certificate not signed by the configured CA gives one line that
says which, within seconds, instead of clients that retry in the background for ever.
A service that does not answer yet is not an error here: the worker waits for Redis
(its readiness says so), and `topics create` reports a broker that never answers.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

import redis
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from crmstream.errors import KafkaError, RedisUnavailableError
from crmstream.settings import Settings
from handlers.redis_client import SyncRedisClient, connect_sync

log = logging.getLogger("crmstream.worker")

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
