"""Every Prometheus metric the worker exports, on one registry, named in one place.

Names follow Prometheus conventions: the ``crmstream_`` prefix, ``_total`` on
counters, ``_seconds`` on durations. Every label has a bounded set of values
(event types, topics, partitions, rules, segments, reasons): never a customer,
and a shop only when ``CRMSTREAM_METRICS_PER_SHOP`` asks for it. Faust's own
sensors go on the same registry, as ``crmstream_faust_*``.

Counts are added once per batch (``inc(n)``), not once per event: the cost of
metrics stays a few calls per batch however large it is.
"""

from __future__ import annotations

import platform
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

from crmstream import __version__

# A "_created" series beside every counter doubles what Prometheus stores, for nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it untyped
REGISTRY: Final = CollectorRegistry(auto_describe=True)

# Seconds: a batch takes milliseconds; an event may wait minutes in a backlog.
_FAST: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_SIZES: Final = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)

BUILD: Final = Info("crmstream_build", "Version of the running worker.", registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})

EVENTS: Final = Counter(
    "crmstream_events_consumed_total",
    "Events read from the event topics, by topic, type and outcome "
    "(processed, duplicate, invalid).",
    ["topic", "type", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS: Final = Counter(
    "crmstream_dead_letters_total",
    "Messages sent to the dead-letter topic, by reason.",
    ["reason"],
    registry=REGISTRY,
)
BATCH_SIZE: Final = Histogram(
    "crmstream_batch_size",
    "Records per batch taken from Kafka.",
    buckets=_SIZES,
    registry=REGISTRY,
)
BATCH_SECONDS: Final = Histogram(
    "crmstream_batch_duration_seconds",
    "Time to decode a batch and apply it (profiles, segments, rules) until it may be committed.",
    buckets=_FAST,
    registry=REGISTRY,
)
EVENT_LAG: Final = Histogram(
    "crmstream_event_lag_seconds",
    "Event time to processing, per partition and batch (its newest event).",
    buckets=_LAG,
    registry=REGISTRY,
)
EVENT_TIME_ALLOWANCE: Final = Gauge(
    "crmstream_event_time_allowance_seconds",
    "How long a partition's decisions wait for storefront writes still on their way to "
    "the broker: the largest (append time - event time) of the last moments, between a "
    "floor and a ceiling.",
    ["partition"],
    registry=REGISTRY,
)
EVENT_LOOP_STALL: Final = Gauge(
    "crmstream_event_loop_stall_seconds",
    "The longest the worker's event loop was kept from running within the allowance "
    "window: a partition the broker said was caught up counts as caught up only that much "
    "earlier, so in-order decisions and timers wait as long.",
    registry=REGISTRY,
)
CONSUMER_LAG: Final = Gauge(
    "crmstream_consumer_lag",
    "Records not read yet, per partition: high watermark minus position.",
    ["topic", "partition"],
    registry=REGISTRY,
)
REDIS_SECONDS: Final = Histogram(
    "crmstream_redis_call_duration_seconds",
    "One round trip to Redis (a pipeline of Function calls), by stage: profile, segment, "
    "trigger, timers, offsets.",
    ["stage"],
    buckets=_FAST,
    registry=REGISTRY,
)
REDIS_ERRORS: Final = Counter(
    "crmstream_redis_errors_total",
    "Round trips to Redis that failed, by stage.",
    ["stage"],
    registry=REGISTRY,
)
TRIGGERS: Final = Counter(
    "crmstream_triggers_total",
    "Trigger decisions, by rule, channel and outcome (sent, suppressed_consent, "
    "suppressed_cooldown, suppressed_cap, held_quiet_hours, holdout, duplicate, expired).",
    ["rule", "channel", "outcome"],
    registry=REGISTRY,
)
JOURNEY_MOVES: Final = Counter(
    "crmstream_journey_moves_total",
    "Journey instances moved, by journey and what happened (entered, sent, held, capped, "
    "no_consent, exited).",
    ["journey", "outcome"],
    registry=REGISTRY,
)
REPLICA_WAITS_SHORT: Final = Counter(
    "crmstream_replica_waits_short_total",
    "Times a primary's replicas did not acknowledge a batch's writes within the timeout: "
    "its offsets were not recorded and the batch was handed over again.",
    registry=REGISTRY,
)
STATE_REWINDS: Final = Counter(
    "crmstream_state_rewinds_total",
    "Times Redis was found holding older offsets than a worker recorded there (it lost "
    "recent writes) and the partitions were read again from Kafka.",
    registry=REGISTRY,
)
HTTP_AUTH_FAILURES: Final = Counter(
    "crmstream_http_auth_failures_total",
    "HTTP requests refused for their token, by reason: missing (no bearer token) or invalid "
    "(unknown, revoked or wrong). Each refusal is answered after a short pause.",
    ["reason"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG: Final = Gauge(
    "crmstream_outbox_backlog",
    "Entries waiting in the outboxes for the relay, by outbox (triggers, segments).",
    ["outbox"],
    registry=REGISTRY,
)
OUTBOX_OLDEST: Final = Gauge(
    "crmstream_outbox_oldest_age_seconds",
    "Age of the oldest entry still in an outbox (0 when empty).",
    ["outbox"],
    registry=REGISTRY,
)
RELAYED: Final = Counter(
    "crmstream_relayed_total",
    "Messages the relays published and removed from the outboxes, by outbox.",
    ["outbox"],
    registry=REGISTRY,
)
RELAY_REFUSED: Final = Counter(
    "crmstream_relay_refused_total",
    "Messages the broker refused, by outbox; each stays in its outbox and is sent again.",
    ["outbox"],
    registry=REGISTRY,
)
TIMERS_PENDING: Final = Gauge(
    "crmstream_timers_pending",
    "Absence timers armed and not yet due or cancelled.",
    registry=REGISTRY,
)
HELD: Final = Gauge(
    "crmstream_triggers_held",
    "Triggers held for the end of their customers' quiet hours.",
    registry=REGISTRY,
)
DECISION_DELAY: Final = Histogram(
    "crmstream_decision_delay_seconds",
    "From an event's time to the decision of an on-event rule about it (on the wall clock): "
    "decided on arrival, or in event-time order once its partition's time has passed it.",
    ["decided"],
    buckets=_FAST,
    registry=REGISTRY,
)
TIMER_DELAY: Final = Histogram(
    "crmstream_timer_firing_delay_seconds",
    "How long after its deadline (on the wall clock) an absence timer fired.",
    buckets=_LAG,
    registry=REGISTRY,
)
SEGMENT_MEMBERS: Final = Gauge(
    "crmstream_segment_members",
    "Customers in each segment (every shop together).",
    ["segment"],
    registry=REGISTRY,
)
SEGMENT_MEMBERS_BY_SHOP: Final = Gauge(
    "crmstream_segment_members_by_shop",
    "Customers in each segment of each shop (only with CRMSTREAM_METRICS_PER_SHOP).",
    ["shop", "segment"],
    registry=REGISTRY,
)
SEGMENT_CHANGES: Final = Counter(
    "crmstream_segment_changes_total",
    "Segment memberships entered or left.",
    registry=REGISTRY,
)
READY: Final = Gauge(
    "crmstream_ready",
    "1 when this worker is ready (what /readyz says), 0 when not.",
    registry=REGISTRY,
)
RULE_RELOADS: Final = Counter(
    "crmstream_rule_reloads_total",
    "Reloads of the rules and segments, by result (ok, failed).",
    ["result"],
    registry=REGISTRY,
)
RULES_LOADED: Final = Gauge(
    "crmstream_rules_loaded",
    "Enabled rules in the running set.",
    registry=REGISTRY,
)


class RedisTimer:
    """Times a stage's round trips to Redis and counts the ones that fail."""

    __slots__ = ("_errors", "_seconds")

    def __init__(self, stage: str) -> None:
        self._seconds = REDIS_SECONDS.labels(stage)
        self._errors = REDIS_ERRORS.labels(stage)

    def observe(self, seconds: float) -> None:
        if _state.enabled:
            self._seconds.observe(seconds)

    def failed(self) -> None:
        if _state.enabled:
            self._errors.inc()


class _State:
    enabled = True


_state = _State()


class _Unmeasured:
    """Takes every metric call and does nothing (metrics turned off)."""

    def labels(self, *_values: str) -> _Unmeasured:
        return self

    def inc(self, _amount: float = 1) -> None:
        pass

    def set(self, _value: float) -> None:
        pass

    def observe(self, _value: float) -> None:
        pass

    def remove(self, *_values: str) -> None:
        pass


def disable() -> None:
    """Turn every metric of this module into a no-op (CRMSTREAM_METRICS_ENABLED=false): what
    metrics cost is then measurable against nothing at all."""
    _state.enabled = False
    unmeasured = _Unmeasured()
    module = globals()
    for name, value in list(module.items()):
        if isinstance(value, Counter | Gauge | Histogram) and name.isupper():
            module[name] = unmeasured
