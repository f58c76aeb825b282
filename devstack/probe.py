"""Is a service answering? Cheap checks used before starting anything and while waiting."""

from __future__ import annotations

import contextlib
import socket

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from crmstream.settings import Settings


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def kafka_answers(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True once the broker answers a metadata request (an open port is not enough)."""
    host, port = settings.kafka.first_host_port
    if not port_open(host, port):
        return False
    # Quiet: a broker that is still starting would fill the terminal with retries.
    client = AdminClient({**settings.kafka.librdkafka(), "log_level": 0})
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def redis_answers(settings: Settings, timeout_s: float = 1.0) -> bool:
    host, port = settings.redis.host_port
    if not port_open(host, port):
        return False
    password = settings.redis.password.get_secret_value() if settings.redis.password else None
    ca = settings.redis.ssl_ca_certs
    tls = {"ssl_ca_certs": str(ca)} if ca and str(settings.redis.url).startswith("rediss:") else {}
    client = redis.Redis.from_url(
        str(settings.redis.url),
        password=password,
        username=settings.redis.username,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        **tls,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
