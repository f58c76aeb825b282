"""The profile stage: a batch of valid events applied to Redis in one Function call.

Events are grouped by customer (keeping each customer's order); the call takes
the keys of every customer in the batch and applies them atomically, so a crash
never leaves half an event applied. Duplicates (by id, within the dedup window)
change nothing and are counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import redis.asyncio
from redis.exceptions import ResponseError

from crmstream.settings import ProfileSettings, Settings
from handlers.keys import Keys
from handlers.profile.encode import EncodedEvent, encode_event
from handlers.redis_client import connect
from handlers.scripts import APPLY_BATCH, PROFILE_LIBRARY
from handlers.shop_configs import ShopConfigs
from schemas.events import Envelope

log = logging.getLogger("crmstream.profiles")

APPLIED: Final = 1
DUPLICATE: Final = 0
ERASED: Final = 2
_HOUR_S: Final = 3600
_DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    duplicates: int
    erased: int


def _header(settings: ProfileSettings) -> list[int]:
    lateness = settings.lateness_s
    return [
        settings.dedup_window_s * 1000,
        24 + -(-lateness // _HOUR_S),  # hourly buckets kept: the 24h window plus lateness
        365 + -(-lateness // _DAY_S),  # daily buckets kept: the 365d window plus lateness
        settings.recent_views,
        settings.favorites,
        settings.categories,
        settings.weight_view,
        settings.weight_favorite,
        settings.weight_cart,
        settings.weight_order,
    ]


class ProfileStage:
    """An EventSink that keeps the live profiles."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        keys: Keys,
        settings: ProfileSettings,
        shops: ShopConfigs,
        hash_key: bytes | None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._header = _header(settings)
        self._shops = shops
        self._hash_key = hash_key
        self._loaded = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfileStage:
        key = settings.privacy.hash_key
        return cls(
            connect(settings.redis),
            Keys(settings.redis.key_prefix),
            settings.profiles,
            ShopConfigs(settings.profiles.shop_config_dir),
            key.get_secret_value().encode() if key else None,
        )

    async def handle(self, events: Sequence[Envelope]) -> None:
        await self.apply(events)

    async def apply(self, events: Sequence[Envelope]) -> BatchOutcome:
        by_customer: dict[tuple[str, str], list[EncodedEvent]] = {}
        for event in events:
            encoded = encode_event(event, self._shops.for_shop(event.shop), self._hash_key)
            by_customer.setdefault((event.shop, event.who), []).append(encoded)
        keys: list[str] = []
        args: list[bytes | str | int] = [*self._header, int(time.time() * 1000)]
        for index, ((shop, who), encoded_events) in enumerate(by_customer.items(), 1):
            keys.extend(self._keys.customer(shop, who))
            args.append(index)
            args.append(len(encoded_events))
            for encoded in encoded_events:
                args.extend(encoded)
        statuses = await self._call(keys, args)
        return BatchOutcome(
            applied=statuses.count(APPLIED),
            duplicates=statuses.count(DUPLICATE),
            erased=statuses.count(ERASED),
        )

    async def _call(self, keys: list[str], args: list[bytes | str | int]) -> list[int]:
        if not self._loaded:
            await self.load_functions()
        try:
            result = await self._client.fcall(APPLY_BATCH, len(keys), *keys, *args)
        except ResponseError as exc:
            if "Function not found" not in str(exc):
                raise
            # Redis restarted without persistence, or was flushed: load the library again.
            log.warning("profile function missing in Redis; loading it again")
            await self.load_functions()
            result = await self._client.fcall(APPLY_BATCH, len(keys), *keys, *args)
        return [int(status) for status in result]

    async def load_functions(self) -> None:
        await self._client.function_load(PROFILE_LIBRARY, replace=True)
        self._loaded = True

    async def close(self) -> None:
        await self._client.aclose()
