"""How to reach the broker and Redis (``CRMSTREAM_KAFKA_*``, ``CRMSTREAM_REDIS_*``):
addresses, credentials and TLS, and the client properties they make. Groups of
:class:`~crmstream.settings.Settings`, apart from what the engine is told to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, RedisDsn, SecretStr, field_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(BaseModel):
    """How to reach the brokers. SASL and TLS are optional and off by default."""

    model_config = _FROZEN

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "crmstream"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("bootstrap")
    @classmethod
    def _hosts_have_ports(cls, value: str) -> str:
        for host in value.split(","):
            _, sep, port = host.strip().rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @property
    def first_host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap.split(",")[0].strip().rpartition(":")
        return host.strip("[]"), int(port)

    def librdkafka(self) -> dict[str, str | int | float | bool]:
        """Client properties for confluent-kafka (librdkafka names)."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        for key, path in (
            ("ssl.ca.location", self.ssl_cafile),
            ("ssl.certificate.location", self.ssl_certfile),
            ("ssl.key.location", self.ssl_keyfile),
        ):
            if path:
                conf[key] = str(path)
        return conf


class RedisSettings(BaseModel):
    """Where Redis lives, as a DSN (``rediss://`` for TLS), and the key space used there."""

    model_config = _FROZEN

    url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    # AUTH password kept out of the URL so that it stays secret in logs and reprs.
    password: SecretStr | None = None
    username: str | None = None
    ssl_ca_certs: Path | None = None
    key_prefix: str = "crm"
    socket_timeout_s: float = Field(default=5.0, gt=0)
    # A Redis Cluster: ``url`` names any one node; the client finds the rest.
    cluster: bool = False
    # Replicas that must hold a batch's writes before its offsets are recorded, so that a
    # failover to one loses nothing (handlers/replication.py). None: 1 on a cluster, 0 on
    # one Redis (give it 1 when a replica and Sentinel stand behind it).
    wait_replicas: int | None = Field(default=None, ge=0, le=5)
    wait_timeout_ms: int = Field(default=2000, ge=1)

    @property
    def replicas_to_wait_for(self) -> int:
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 1 if self.cluster else 0

    @field_validator("key_prefix")
    @classmethod
    def _prefix_chars(cls, value: str) -> str:
        # Braces would open a Redis Cluster hash tag of their own.
        if not value or any(c in value for c in "{}: \t\n"):
            raise ValueError("key_prefix must be non-empty, without braces, colons or spaces")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(str(self.url))
        return parts.hostname or "127.0.0.1", parts.port or 6379
