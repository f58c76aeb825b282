"""Rules on a schedule: daily at a local time, in each customer's own timezone.

Customers come from the indexes (handlers/triggers/indexes.py), never from a
scan of all keys: birthdays by month and day, dormancy and repurchase windows by
the time of the last order or delivery, holidays from the registered customers.
Each candidate is checked against the live profile (an index may be stale), and
fires under an occurrence that makes it once: a birthday once a year, a holiday
once a date, a win-back once per dormancy, a reminder once per delivery.

Every worker may run this at every tick; the trigger ids make that harmless.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from handlers.profile.read import Profile, ProfileReader
from handlers.triggers import decide
from handlers.triggers.stage import TriggerStage
from handlers.triggers.work import BatchWork
from handlers.triggers.writer import TriggerWriter
from rules.activation import activation, profile_view
from rules.expressions import ConditionError
from rules.loader import CompiledRule
from rules.model import Schedule, parse_clock
from schemas.triggers import MatchedCondition

log = logging.getLogger("crmstream.schedules")

_DAY_MS = 86_400_000
# Every timezone lies within these offsets of UTC: the local dates that can be "today".
_EARLIEST, _LATEST = timedelta(hours=-12), timedelta(hours=14)
_CHUNK = 500


def local_dates(now: datetime) -> set[str]:
    """MM-DD of every date that is today somewhere on Earth."""
    return {(now + offset).strftime("%m-%d") for offset in (_EARLIEST, timedelta(0), _LATEST)}


class Scheduler:
    def __init__(
        self, stage: TriggerStage, reader: ProfileReader, writer: TriggerWriter, every_s: int
    ) -> None:
        self._stage = stage
        self._reader = reader
        self._writer = writer
        self._every_s = every_s

    async def run(self, now_ms: int) -> Counter[str]:
        """Fire what is due at ``now_ms`` (wall clock) for every schedule rule."""
        outcomes: Counter[str] = Counter()
        for rule in self._stage.rules.scheduled:
            try:
                outcomes.update(await self._run_rule(rule, now_ms))
            except ConditionError as exc:
                log.warning("schedule %s: %s", rule.rule.id, exc)
                outcomes["error"] += 1
        return outcomes

    async def _run_rule(self, rule: CompiledRule, now_ms: int) -> Counter[str]:
        schedule = rule.rule.when.schedule
        assert schedule is not None  # noqa: S101 -- the rule set lists only schedules here
        candidates = await self._customers(rule, schedule, now_ms)
        outcomes: Counter[str] = Counter()
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            profiles = await self._reader.read_many(chunk, as_of_ms=now_ms)
            work = BatchWork()
            stale: list[tuple[str, str]] = []
            for (shop, customer), profile in profiles.items():
                if profile is None:
                    stale.append((shop, customer))
                    continue
                occurrence = self._due(schedule, profile, now_ms)
                if occurrence is None:
                    continue
                context = activation(None, profile_view(profile), now_ms)
                if not rule.condition.holds(context):
                    continue
                if rule.occurrence is not None:
                    occurrence = str(rule.occurrence.evaluate(context))
                candidate = decide.build(
                    rule,
                    shop=shop,
                    customer=customer,
                    occurrence=occurrence,
                    at_ms=now_ms,
                    profile=profile,
                    reason=_reason(rule, schedule, profile, occurrence, context),
                    caused_by=[],
                    items=[],
                    gate=self._stage.gate_of(shop),
                    daily_cap=self._stage.settings.daily_cap,
                )
                base = self._stage.keys.trigger_shard(shop, customer)
                work.shards[base].candidates.append(candidate)
            outcomes.update(await self._writer.submit(work))
            await self._forget(schedule, stale)
        return outcomes

    async def _customers(
        self, rule: CompiledRule, schedule: Schedule, now_ms: int
    ) -> list[tuple[str, str]]:
        """Customers of this rule's index in the shards this worker takes this time slot."""
        keys, client = self._stage.keys, self._writer.client
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        today = local_dates(now)
        if schedule.occasion == "holiday" and not today & set(schedule.dates):
            return []
        # Each shard's pass is taken by one worker per slot; holidays, which go through
        # every customer, pass once an hour.
        every_s = self._every_s if schedule.occasion != "holiday" else max(self._every_s, 3600)
        slot = now_ms // (every_s * 1000)
        claim = client.pipeline(transaction=False)
        bases = keys.trigger_shards()
        for base in bases:
            claim.set(keys.schedule_pass(base, rule.rule.id, slot), 1, nx=True, ex=2 * every_s)
        mine = [base for base, took in zip(bases, await claim.execute(), strict=True) if took]
        found: set[tuple[str, str]] = set()
        for base in mine:
            members: Iterable[bytes | str]
            if schedule.occasion == "birthday":
                indexes = [keys.schedule_index(base, "birthday", d.replace("-", "")) for d in today]
                members = await client.sunion(indexes)
            elif schedule.occasion == "holiday":
                members = {m async for m in client.sscan_iter(keys.schedule_index(base, "holiday"))}
            else:
                days = schedule.days or 0
                # Crossed the threshold within the last two days: every timezone's "today",
                # and a worker that was down for a day still catches up.
                newest = now_ms - days * _DAY_MS + 14 * 3_600_000
                oldest = now_ms - (days + 2) * _DAY_MS
                index = keys.schedule_index(base, schedule.occasion)
                members = cast(list[bytes], await client.zrangebyscore(index, oldest, newest))
            for member in members:
                text = member.decode() if isinstance(member, bytes) else member
                shop, _, customer = text.partition(":")
                found.add((shop, customer))
        return sorted(found)

    def _due(self, schedule: Schedule, profile: Profile, now_ms: int) -> str | None:
        """The occurrence due now for this customer, or None (not today, not yet the hour)."""
        zone = decide.zone_of(profile)
        local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(zone)
        if local.time().replace(tzinfo=None) < parse_clock(schedule.daily):
            return None
        today = local.strftime("%m-%d")
        if schedule.occasion == "birthday":
            birthday = profile["facts"].get("birthday") or ""
            return str(local.year) if birthday[5:] == today else None
        if schedule.occasion == "holiday":
            return local.date().isoformat() if today in schedule.dates else None
        moment_name = "last_order" if schedule.occasion == "dormant" else "last_delivered"
        moment = profile["recency"].get(moment_name)
        if moment is None:
            return None
        since = local - datetime.fromisoformat(moment).astimezone(zone)
        # Once per dormancy (per delivery): the occurrence is the moment it counts from.
        return moment if since >= timedelta(days=schedule.days or 0) else None

    async def _forget(self, schedule: Schedule, customers: Iterable[tuple[str, str]]) -> None:
        """Drop index entries of customers who are gone (erased)."""
        keys = self._stage.keys
        pipe = self._writer.client.pipeline(transaction=False)
        queued = 0
        for shop, customer in customers:
            base, who = keys.trigger_shard(shop, customer), f"{shop}:{customer}"
            if schedule.occasion == "birthday":
                continue  # which day it was filed under is gone with the profile; harmless
            index = keys.schedule_index(base, schedule.occasion)
            if schedule.occasion == "holiday":
                pipe.srem(index, who)
            else:
                pipe.zrem(index, who)
            queued += 1
        if queued:
            await pipe.execute()


def _reason(
    rule: CompiledRule,
    schedule: Schedule,
    profile: Profile,
    occurrence: str,
    context: dict[str, Any],
) -> list[MatchedCondition]:
    what = {
        "birthday": "birthday today",
        "holiday": "holiday today",
        "dormant": f"no order for {schedule.days} days",
        "after_delivery": f"{schedule.days} days since the last delivery",
    }[schedule.occasion]
    values: dict[str, Any] = {
        "profile.facts.timezone": profile["facts"].get("timezone"),
        "occurrence": occurrence,
    }
    if schedule.occasion == "birthday":
        values["profile.facts.birthday"] = profile["facts"].get("birthday")
    reasons = [
        MatchedCondition(condition=f"daily at {schedule.daily} local: {what}", values=values)
    ]
    if rule.rule.condition.strip() != "true":
        reasons.append(
            MatchedCondition(
                condition=rule.condition.text, values=rule.condition.values_read(context)
            )
        )
    return reasons
