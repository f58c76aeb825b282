"""Configuration, read once from ``CRMSTREAM_*`` environment variables.

One frozen :class:`Settings` object is built at start-up and handed down; no
module reads the environment on its own. Nested groups map to variables with
one underscore after the group name, so ``kafka.bootstrap`` is
``CRMSTREAM_KAFKA_BOOTSTRAP`` and ``redis.url`` is ``CRMSTREAM_REDIS_URL``.
Secrets are :class:`~pydantic.SecretStr`: they never show in a repr or a log.

These are the engine's settings alone: the local development stack keeps its own
(``CRMSTREAM_STACK_*``, devstack/settings.py), and an unset folder of rules, segments or
shop configurations means the ones shipped with them (rules/folders.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmstream.connections import KafkaSettings, RedisSettings

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "crmstream"


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


class IngestSettings(BaseModel):
    """What the front door accepts."""

    model_config = _FROZEN

    max_event_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Clocks of storefronts drift; an event further ahead than this is refused.
    future_skew_s: float = Field(default=300.0, ge=0)


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
    # Anonymous ids known to be merged, remembered by each worker so that their events go
    # straight to the customer (handlers/profile/identity.py); a miss costs a redirect
    # within the batch, never a wrong profile. About 300 bytes each: the default keeps a
    # worker's memory flat however many shoppers log in.
    alias_cache: int = Field(default=20_000, ge=0, le=10_000_000)
    # Category affinity weights: a view counts least, an order most.
    weight_view: int = Field(default=1, ge=0)
    weight_favorite: int = Field(default=3, ge=0)
    weight_cart: int = Field(default=5, ge=0)
    weight_order: int = Field(default=10, ge=0)
    # Unset: the shipped default (rules/folders.py), resolved by whoever reads the folder.
    shop_config_dir: Path | None = None


class TriggerSettings(BaseModel):
    """Rules, their guards, timers and the outbox relay."""

    model_config = _FROZEN

    # Unset: the shipped rule pack (rules/folders.py).
    rules_dir: Path | None = None
    # Unset: the shipped journeys (rules/folders.py).
    journeys_dir: Path | None = None
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
    # On topics the broker stamps with append times, the most the measured allowance for
    # writes still on their way may be.
    timer_write_delay_s: float = Field(default=2.0, ge=0)
    # The least that allowance may be (the network and clocks between broker and worker),
    # and how long one late write keeps it up (handlers/timing/allowance.py).
    timer_allowance_floor_s: float = Field(default=0.05, ge=0)
    timer_allowance_window_s: float = Field(default=10.0, gt=0)
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


class SegmentSettings(BaseModel):
    """Live customer groups."""

    model_config = _FROZEN

    # Unset: the shipped segments (rules/folders.py).
    segments_dir: Path | None = None
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
    # Where Faust keeps its local data, a folder per app id (tables live in Redis, so it
    # stays small, but it must be writable: /var/lib/crmstream/faust in the image).
    data_dir: Path = Field(default_factory=lambda: _state_home() / "faust")
    # Unset: the engine, which streams/worker.py wires itself, since these settings may not
    # name the layers above them. Tests and experiments put another stage in its place
    # with "module:callable", a callable taking Settings and returning an EventSink.
    event_sink: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")


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
    triggers: TriggerSettings = TriggerSettings()
    segments: SegmentSettings = SegmentSettings()
    metrics: MetricsSettings = MetricsSettings()
    profiles: ProfileSettings = ProfileSettings()
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    console: ConsoleSettings = ConsoleSettings()

    def privacy_hash_key(self) -> bytes | None:
        """The key phone numbers and e-mail addresses are hashed with
        (``CRMSTREAM_PRIVACY_HASH_KEY``, which production must set), else none."""
        if self.privacy.hash_key is None:
            return None
        return self.privacy.hash_key.get_secret_value().encode()
