"""Configuration, read once from ``CRMSTREAM_*`` environment variables.

One frozen :class:`Settings` object is built at start-up and handed down; no
module reads the environment on its own. Nested groups map to variables with
one underscore after the group name, so ``kafka.bootstrap`` is
``CRMSTREAM_KAFKA_BOOTSTRAP`` and ``redis.url`` is ``CRMSTREAM_REDIS_URL``.
Secrets are :class:`~pydantic.SecretStr`: they never show in a repr or a log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, RedisDsn, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "crmstream"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crmstream"


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


class TopicSettings(BaseModel):
    """Names and sizes of the topics (docs/DESIGN.md §1, "The event contract").

    The prefix lets tests (and separate deployments) share one broker.
    """

    model_config = _FROZEN

    prefix: str = "crm"
    event_partitions: int = Field(default=8, ge=1, le=1024)
    output_partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=7)
    # Dead letters keep the bytes as they came, contact details included (they are what an
    # operator has to look at): how long, on topics `topics create` makes or updates.
    dlq_retention_days: int = Field(default=28, ge=1, le=365)

    @field_validator("prefix")
    @classmethod
    def _legal_topic_chars(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "._-" for c in value):
            raise ValueError("topic prefix may hold only letters, digits, '.', '_' and '-'")
        return value


class StackSettings(BaseModel):
    """The local development stack started by ``crmstream stack up``."""

    model_config = _FROZEN

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


class IngestSettings(BaseModel):
    """What the front door accepts."""

    model_config = _FROZEN

    max_event_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Clocks of storefronts drift; an event further ahead than this is refused.
    future_skew_s: float = Field(default=300.0, ge=0)


def _packaged_shop_configs() -> Path:
    return Path(__file__).resolve().parents[1] / "rules" / "shops"


class ProfileSettings(BaseModel):
    """How live profiles are kept."""

    model_config = _FROZEN

    dedup_window_s: int = Field(default=7 * 86_400, ge=60)
    # Events later than this behind a customer's newest still count in lifetime totals,
    # but may miss their sliding-window bucket.
    lateness_s: int = Field(default=86_400, ge=0)
    recent_views: int = Field(default=20, ge=1, le=1000)
    favorites: int = Field(default=100, ge=1, le=10_000)
    categories: int = Field(default=50, ge=1, le=10_000)
    # Items whose cart line an order took, remembered so that a late add stays out.
    cart_markers: int = Field(default=100, ge=0, le=10_000)
    # Category affinity weights: a view counts least, an order most.
    weight_view: int = Field(default=1, ge=0)
    weight_favorite: int = Field(default=3, ge=0)
    weight_cart: int = Field(default=5, ge=0)
    weight_order: int = Field(default=10, ge=0)
    shop_config_dir: Path = Field(default_factory=_packaged_shop_configs)


def _packaged_rules() -> Path:
    return Path(__file__).resolve().parents[1] / "rules" / "pack"


class TriggerSettings(BaseModel):
    """Rules, their guards, timers and the outbox relay."""

    model_config = _FROZEN

    rules_dir: Path = Field(default_factory=_packaged_rules)
    # Marketing messages a customer gets per channel per local day (transactional rules
    # are not counted).
    daily_cap: int = Field(default=3, ge=1, le=1000)
    # How long a fired trigger's id is remembered: a replay within it never fires it again.
    fired_window_days: int = Field(default=400, ge=1)
    # Decisions kept per customer (the decision log: outcome, rule, reason), newest first.
    decision_log: int = Field(default=50, ge=0, le=1000)
    timer_tick_s: float = Field(default=0.1, gt=0, le=60)
    # Absence deadlines follow each partition's event time (handlers/timing/clock.py),
    # less this allowance for events written a little out of order.
    timer_disorder_s: float = Field(default=0.25, ge=0)
    # How long a record may take from the storefront's write (its Kafka timestamp) to the
    # broker: the event topics of a partition are lined up by when their records were
    # written, and a topic caught up counts as read up to this long before its last fetch.
    timer_write_delay_s: float = Field(default=2.0, ge=0)
    # A replay of old events, quiet on every topic for this long, is over: the clock moves
    # its partition's time on to now. Live traffic keeps pace with the clock regardless.
    timer_idle_s: float = Field(default=10.0, gt=0)
    # The broker answers a caught-up partition's fetch at least every fetch.max.wait.ms: no
    # answer for longer than this, it was away (or this worker stalled), and what was
    # written meanwhile may still come late (handlers/timing/clock.py; streams/consumer.py
    # reports so old a word as unknown).
    broker_away_s: float = Field(default=1.5, gt=0)
    # Schedule rules (birthdays, dormancy…) look for due customers this often; a daily rule
    # fires at most this long after its local time.
    schedule_every_s: int = Field(default=300, ge=10, le=3600)
    relay_batch: int = Field(default=500, ge=1, le=100_000)
    # A relay that died holding outbox entries gives them up after this long.
    relay_claim_idle_s: float = Field(default=30.0, ge=1)


def _packaged_segments() -> Path:
    return Path(__file__).resolve().parents[1] / "rules" / "segments"


class SegmentSettings(BaseModel):
    """Live customer groups."""

    model_config = _FROZEN

    segments_dir: Path = Field(default_factory=_packaged_segments)
    # Segments that time alone can change (days since the last order, sliding windows,
    # lifecycle) are evaluated again this often, for customers active within the horizon.
    recheck_every_s: float = Field(default=3600.0, gt=0)
    recheck_horizon_days: int = Field(default=400, ge=1)


class MetricsSettings(BaseModel):
    """Prometheus metrics on the worker's web port (/metrics)."""

    model_config = _FROZEN

    enabled: bool = True
    # Segment sizes per shop as well as in total: one series per shop and segment, so only
    # for deployments with a bounded number of shops.
    per_shop: bool = False


class PrivacySettings(BaseModel):
    """Phone numbers and e-mail addresses are kept only as keyed hashes (HMAC-SHA256)."""

    model_config = _FROZEN

    # Same key everywhere (importer, workers) so that the same phone hashes the same way.
    hash_key: SecretStr | None = None


class WorkerSettings(BaseModel):
    """The Faust worker."""

    model_config = _FROZEN

    app_id: str = "crmstream"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    batch_max: int = Field(default=1000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.05, gt=0, le=10)
    # How soon the group notices a dead worker and hands its partitions to the others.
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # Logs as JSON lines, as readable text, or JSON unless on a terminal.
    log_format: Literal["auto", "json", "text"] = "auto"
    # "module:callable" taking Settings and returning the stage valid events go to.
    event_sink: str = Field(
        default="handlers.pipeline:ProfilesAndTriggers.from_settings", pattern=r"^[\w.]+:[\w.]+$"
    )


class ConsoleSettings(BaseModel):
    """The merchant console (`crmstream console`): its cookies, and how much one upload
    may hold."""

    model_config = _FROZEN

    # Its cookies carry a shop's API token: behind a TLS-terminating proxy they are marked
    # Secure, so that no browser ever sends them over plain HTTP.
    secure_cookie: bool = False

    # Rows of one customer sheet on the import page. The sheet is read as it streams, so
    # memory stays flat at any length; what grows is the page's wait (400,000 rows took
    # 16 s to check and 26 s to check and send, on two cores) and the report. This admits
    # the 400,000-row lists shops bring in one go; a longer one goes in parts, or through
    # `crmstream import`, which has no cap.
    max_import_rows: int = Field(default=500_000, ge=1, le=10_000_000)
    # Events of one backtest upload. Each goes through the live engine on Redis, far
    # slower than a sheet's row (50,000 events that all fired took 22 s), so fewer keep
    # the page's wait under half a minute.
    max_backtest_events: int = Field(default=50_000, ge=1, le=10_000_000)


class Settings(BaseSettings):
    """Everything crmstream can be told, from ``CRMSTREAM_*`` variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="CRMSTREAM_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    topics: TopicSettings = TopicSettings()
    ingest: IngestSettings = IngestSettings()
    privacy: PrivacySettings = PrivacySettings()
    triggers: TriggerSettings = Field(default_factory=TriggerSettings)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    metrics: MetricsSettings = MetricsSettings()
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    worker: WorkerSettings = WorkerSettings()
    console: ConsoleSettings = ConsoleSettings()

    def privacy_hash_key(self) -> bytes | None:
        """The key phone numbers and e-mail addresses are hashed with: the configured one
        (``CRMSTREAM_PRIVACY_HASH_KEY``, which production must set), else the one the local
        stack made for itself (``crmstream stack up``), else none."""
        if self.privacy.hash_key is not None:
            return self.privacy.hash_key.get_secret_value().encode()
        try:
            return local_hash_key_file(self.stack).read_bytes().strip() or None
        except FileNotFoundError:
            return None
