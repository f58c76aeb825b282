"""Where a shop's customers are in its journeys: each journey's versions as they were first
loaded (the text kept in Redis, so that what is shown is what those inside run), with the
counts of each step as a funnel. Read by the HTTP API and the console alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from handlers.functions.triggers import SEPARATOR
from handlers.journeys.stats import JourneyStats, read_journey_stats
from handlers.journeys.store import read_customer_journeys
from handlers.keys import Keys
from handlers.redis_client import RedisClient
from rules.journey_model import Journey, Step
from rules.lift import CONVERTED, CONVERTED_HOLDOUT
from rules.loader import read_model

_NOT_SENDS: Final = (CONVERTED, CONVERTED_HOLDOUT)


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step of a version, and what its counts say."""

    id: str
    kind: str  # send, wait, wait_for, branch, split or exit
    # Came this far: a wait's arrivals, a send's decisions, an exit's leavers; None for a
    # branch or a split, which hold no one and are not counted.
    count: int | None
    now_at: int  # held here now
    sends: dict[str, int]  # a send step's decisions and conversions, by outcome

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "count": self.count, "now_at": self.now_at,
                "sends": self.sends}  # fmt: skip


@dataclass(frozen=True, slots=True)
class VersionView:
    version: int
    journey: Journey | None  # None: counted, but its text is no longer kept
    stats: JourneyStats
    steps: tuple[FunnelStep, ...]

    def as_dict(self) -> dict[str, object]:
        described = self.journey
        return {
            **self.stats.as_dict(),
            "description": described.description.strip() if described else None,
            "priority": described.priority if described else None,
            "category": described.category if described else None,
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass(frozen=True, slots=True)
class JourneyView:
    journey: str
    running: bool  # the shop has it turned on
    versions: tuple[VersionView, ...]  # oldest first

    @property
    def latest(self) -> VersionView | None:
        return self.versions[-1] if self.versions else None

    def summary(self) -> dict[str, object]:
        latest = self.latest
        return {
            "journey": self.journey,
            "running": self.running,
            "description": latest.journey.description.strip()
            if latest and latest.journey
            else None,
            "versions": [
                {"version": v.version, "entered": v.stats.entered, "now_in": v.stats.now_in,
                 "exited": sum(v.stats.exited.values()), "sent": v.stats.sent}
                for v in self.versions
            ],
        }  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {"journey": self.journey, "running": self.running,
                "versions": [v.as_dict() for v in self.versions]}  # fmt: skip


async def shop_journeys(
    client: RedisClient, keys: Keys, shop: str, running: frozenset[str]
) -> list[JourneyView]:
    """Every journey the shop runs or has counts in, and every journey any worker loaded,
    in id order."""
    stats = await read_journey_stats(client, keys, shop)
    kept = await client.hgetall(keys.journey_versions)
    texts: dict[tuple[str, int], str] = {}
    for field, text in kept.items():
        journey, version = _text(field).split(SEPARATOR)
        texts[(journey, int(version))] = _text(text)
    counted = {(entry.journey, entry.version): entry for entry in stats}
    ids = sorted({journey for journey, _ in (*texts, *counted)} | running)
    views = []
    for journey in ids:
        versions = sorted({v for j, v in (*texts, *counted) if j == journey})
        views.append(
            JourneyView(
                journey,
                journey in running,
                tuple(
                    version_view(journey, v, texts.get((journey, v)), counted.get((journey, v)))
                    for v in versions
                ),
            )
        )
    return views


async def customer_journeys(
    client: RedisClient, keys: Keys, shop: str, customer: str
) -> list[dict[str, object]]:
    """The journeys the customer is in now: each instance's journey, version, key, step,
    since when it has been there, until when it waits (None: it does not), and when it
    entered. Times are RFC 3339, UTC."""
    found = await read_customer_journeys(client, keys, shop, customer)
    return [
        {
            "journey": journey, "version": stored.position.version, "key": key,
            "step": stored.position.step, "since": _iso(stored.position.since_ms),
            "until": _iso(stored.position.until_ms) if stored.position.until_ms else None,
            "entered": _iso(stored.position.entered_ms),
        }
        for (journey, key), stored in sorted(found.instances.items())
    ]  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def version_view(
    journey: str, version: int, text: str | None, stats: JourneyStats | None
) -> VersionView:
    """A version with its counts (none: all zero); its steps as ``text``, the file, says."""
    counts = stats or JourneyStats(journey, version)
    spec = _parse(journey, version, text) if text is not None else None
    steps = tuple(_funnel_step(step, counts) for step in spec.steps) if spec else ()
    return VersionView(version, spec, counts, steps)


def _funnel_step(step: Step, stats: JourneyStats) -> FunnelStep:
    kind = step.kind
    sends = dict(stats.sends.get(step.id, {}))
    count: int | None = None
    if kind == "send":
        count = sum(n for outcome, n in sends.items() if outcome not in _NOT_SENDS)
    elif kind in ("wait", "wait_for"):
        count = stats.reached.get(step.id, 0)
    elif kind == "exit" and step.exit is not None:
        count = stats.exited.get(step.exit, 0)
    return FunnelStep(step.id, kind, count, stats.at.get(step.id, 0), sends)


def _parse(journey: str, version: int, text: str) -> Journey | None:
    read = read_model(f"{journey} version {version}", Journey, "journey", text)
    return None if isinstance(read, list) else read[0]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
