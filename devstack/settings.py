"""Settings of the local development stack (`crmstream stack up`), from ``CRMSTREAM_STACK_*``
variables (or a ``.env`` file), and the privacy hash key the stack makes for itself.

The engine never reads these: a worker, an importer or the console is configured by
crmstream/settings.py alone. Only the command line, on a developer's machine, uses the
stack's key when no key is configured (streams/cli/local_stack.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "crmstream"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crmstream"


class StackSettings(BaseSettings):
    """The local Kafka broker, Redis, secured pair and Redis Cluster: where they keep their
    state and on which ports beyond the engine's own addresses they listen."""

    model_config = SettingsConfigDict(
        env_prefix="CRMSTREAM_STACK_", env_file=".env", extra="ignore", frozen=True
    )

    state_dir: Path = Field(default_factory=_state_home)
    cache_dir: Path = Field(default_factory=_cache_home)
    # The pom that lists the broker's jars; by default the one in this checkout.
    kafka_pom: Path | None = None
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_heap: str = Field(default="512m", pattern=r"^\d+[kmg]$")
    # Durable by default: an append-only file, fsynced every second (a crash loses at most
    # that; the offsets kept with the state read it again from Kafka).
    redis_appendonly: bool = True
    start_timeout_s: float = Field(default=90.0, gt=0)
    # The secured stack (`stack up --secure`): its own broker and Redis, TLS only.
    secure_kafka_port: int = Field(default=9192, ge=1, le=65535)
    secure_kafka_controller_port: int = Field(default=9193, ge=1, le=65535)
    secure_redis_port: int = Field(default=6390, ge=1, le=65535)
    # The local Redis Cluster (`stack up --redis-cluster`): six nodes from this port on.
    redis_cluster_first_port: int = Field(default=7000, ge=1, le=65530)


def local_hash_key_file(stack: StackSettings) -> Path:
    """Where the local stack keeps the privacy hash key it made for itself."""
    return stack.state_dir / "privacy-hash-key"


def read_local_hash_key(stack: StackSettings) -> SecretStr | None:
    """The key `stack up` made (devstack/manager.py), or None before it made one."""
    try:
        key = local_hash_key_file(stack).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return SecretStr(key) if key else None
