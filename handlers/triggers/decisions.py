"""A customer's decisions, as the trigger functions recorded them: the decision log (the
last few, with their reasons) and the trigger ids of the fired window (every one, with
its outcome only). Support reads "why did, or didn't, this customer get the coupon?"
from here."""

from __future__ import annotations

from typing import Any, Final

import orjson

from handlers.functions.triggers import ENTERED_MARK
from handlers.journeys.overview import customer_journeys
from handlers.keys import Keys
from handlers.redis_client import RedisClient

_SEP: Final = b"\x1f"
# Outcomes a guard records in the fired ids as "<outcome>:<trigger id>"; a bare id went
# out (or was held for quiet hours, or held out).
_SUPPRESSED: Final = ("expired", "consent", "cooldown", "capped")
_ENTERED: Final = ENTERED_MARK.encode()


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def parse_decision(entry: bytes | str) -> dict[str, Any]:
    outcome, decided_at, why = _bytes(entry).split(_SEP, 2)
    return {"outcome": outcome.decode(), "decided_at": int(decided_at), **orjson.loads(why)}


def parse_fired(member: bytes | str, at: float) -> dict[str, Any]:
    text = _bytes(member).decode()
    outcome, _, trigger_id = text.partition(":")
    if outcome not in _SUPPRESSED:
        outcome, trigger_id = "decided", text
    return {"trigger_id": trigger_id, "at": int(at), "outcome": outcome}


class DecisionReader:
    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def log(self, shop: str, customer: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The customer's last decisions, newest first."""
        entries = await self._client.lrange(self._keys.decision_log(shop, customer), 0, limit - 1)
        return [parse_decision(entry) for entry in entries]

    async def journeys(self, shop: str, customer: str) -> list[dict[str, object]]:
        """The journeys the customer is in now, each at its step, since when."""
        return await customer_journeys(self._client, self._keys, shop, customer)

    async def fired(self, shop: str, customer: str) -> list[dict[str, Any]]:
        """Every trigger decided for the customer within the fired window, oldest first."""
        members: list[tuple[bytes, float]] = await self._client.zrange(  # type: ignore[assignment]  # WITHSCORES pairs
            self._keys.fired(shop, customer), 0, -1, withscores=True
        )
        # The journey instances made are kept there too (journeys.lua), but are no trigger.
        return [
            parse_fired(member, at)
            for member, at in members
            if not _bytes(member).startswith(_ENTERED)
        ]
