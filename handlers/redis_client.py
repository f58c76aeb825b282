"""Redis connections built from settings: the same DSN, AUTH and TLS options everywhere."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from crmstream.settings import RedisSettings


def _options(settings: RedisSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "health_check_interval": 30,
    }
    if settings.password:
        options["password"] = settings.password.get_secret_value()
    if settings.username:
        options["username"] = settings.username
    if settings.ssl_ca_certs and str(settings.url).startswith("rediss:"):
        options["ssl_ca_certs"] = str(settings.ssl_ca_certs)
    return options


def connect(settings: RedisSettings) -> redis.asyncio.Redis:
    """An asyncio client for the worker (its pool is shared by every agent)."""
    return redis.asyncio.Redis.from_url(str(settings.url), **_options(settings))


def connect_sync(settings: RedisSettings) -> redis.Redis:
    """A blocking client for the CLI and tests."""
    return redis.Redis.from_url(str(settings.url), **_options(settings))
